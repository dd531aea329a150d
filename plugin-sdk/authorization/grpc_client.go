package authorization

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	authorizationv1 "github.com/palvella/palvella/proto/palvella/authorization/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client authorizationv1.AuthorizationServiceClient
}

var _ Authorization = (*grpcClient)(nil)

// NewClient returns an Authorization that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Authorization {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: authorizationv1.NewAuthorizationServiceClient(conn)}
}

func (c *grpcClient) Authorize(ctx context.Context, req *AuthorizeRequest) (*Decision, error) {
	if req == nil {
		req = &AuthorizeRequest{}
	}
	resp, err := c.client.Authorize(ctx, authorizeRequestToProto(req))
	if err != nil {
		return nil, fmt.Errorf("authorize %s on %q: %w", req.Method, req.Resource, sdk.FromGRPC(err))
	}
	return decisionFromProto(resp), nil
}
