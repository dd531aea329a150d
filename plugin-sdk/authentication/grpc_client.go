package authentication

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	authenticationv1 "github.com/palvella/palvella/proto/palvella/authentication/v1"
	"google.golang.org/grpc"
)

// Client is the host's view of an authentication plugin. The token calls
// fail with sdk.ErrUnimplemented when the plugin does not issue tokens.
type Client interface {
	Authentication
	TokenIssuer
}

type grpcClient struct {
	*sdk.BaseClient
	client authenticationv1.AuthenticationServiceClient
}

var (
	_ Authentication = (*grpcClient)(nil)
	_ TokenIssuer    = (*grpcClient)(nil)
	_ Client         = (*grpcClient)(nil)
)

// NewClient returns a Client that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Client {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: authenticationv1.NewAuthenticationServiceClient(conn)}
}

func (c *grpcClient) Authenticate(ctx context.Context, req *AuthenticateRequest) (*Identity, error) {
	if req == nil {
		req = &AuthenticateRequest{}
	}
	resp, err := c.client.Authenticate(ctx, authenticateRequestToProto(req))
	if err != nil {
		return nil, fmt.Errorf("authenticate %q credentials: %w", req.Scheme, sdk.FromGRPC(err))
	}
	if resp.GetIdentity() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "identity", "plugin answered Authenticate without an identity")
	}
	return IdentityFromProto(resp.GetIdentity()), nil
}

func (c *grpcClient) CreateToken(ctx context.Context, req *CreateTokenRequest) (*CreatedToken, error) {
	if req == nil {
		req = &CreateTokenRequest{}
	}
	resp, err := c.client.CreateToken(ctx, createTokenRequestToProto(req))
	if err != nil {
		return nil, fmt.Errorf("create token for %q: %w", req.Owner, sdk.FromGRPC(err))
	}
	if resp.GetMeta() == nil || resp.GetToken() == "" {
		return nil, sdk.Errorf(sdk.ErrInternal, "token", "plugin answered CreateToken without a token")
	}
	return &CreatedToken{Token: resp.GetToken(), Meta: tokenMetaFromProto(resp.GetMeta())}, nil
}

func (c *grpcClient) RevokeToken(ctx context.Context, id string) (*TokenMeta, error) {
	resp, err := c.client.RevokeToken(ctx, &authenticationv1.RevokeTokenRequest{Id: id})
	if err != nil {
		return nil, fmt.Errorf("revoke token %q: %w", id, sdk.FromGRPC(err))
	}
	if resp.GetMeta() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "meta", "plugin answered RevokeToken without the token")
	}
	m := tokenMetaFromProto(resp.GetMeta())
	return &m, nil
}

func (c *grpcClient) ListTokens(ctx context.Context, owner string) ([]TokenMeta, error) {
	resp, err := c.client.ListTokens(ctx, &authenticationv1.ListTokensRequest{Owner: owner})
	if err != nil {
		return nil, fmt.Errorf("list tokens of %q: %w", owner, sdk.FromGRPC(err))
	}
	out := make([]TokenMeta, 0, len(resp.GetItems()))
	for _, m := range resp.GetItems() {
		out = append(out, tokenMetaFromProto(m))
	}
	return out, nil
}
