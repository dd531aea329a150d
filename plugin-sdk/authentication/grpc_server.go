package authentication

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	authenticationv1 "github.com/palvella/palvella/proto/palvella/authentication/v1"
)

type grpcServer struct {
	authenticationv1.UnimplementedAuthenticationServiceServer
	impl Authentication
	// issuer is impl as a TokenIssuer, nil when it is not one.
	issuer TokenIssuer
}

func newServer(impl Authentication) *grpcServer {
	s := &grpcServer{impl: impl}
	if issuer, ok := impl.(TokenIssuer); ok {
		s.issuer = issuer
	}
	return s
}

// errNoIssuer answers token calls to a plugin that does not issue tokens.
func errNoIssuer(call string) error {
	return sdk.ToGRPC(sdk.Errorf(sdk.ErrUnimplemented, "", "%s: this authentication plugin does not issue tokens", call))
}

func (s *grpcServer) Authenticate(ctx context.Context, req *authenticationv1.AuthenticateRequest) (*authenticationv1.AuthenticateResponse, error) {
	id, err := s.impl.Authenticate(ctx, authenticateRequestFromProto(req))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if id == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "identity", "plugin answered Authenticate without an identity"))
	}
	return &authenticationv1.AuthenticateResponse{Identity: IdentityToProto(id)}, nil
}

func (s *grpcServer) CreateToken(ctx context.Context, req *authenticationv1.CreateTokenRequest) (*authenticationv1.CreateTokenResponse, error) {
	if s.issuer == nil {
		return nil, errNoIssuer("CreateToken")
	}
	tok, err := s.issuer.CreateToken(ctx, createTokenRequestFromProto(req))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &authenticationv1.CreateTokenResponse{Token: tok.Token, Meta: tokenMetaToProto(&tok.Meta)}, nil
}

func (s *grpcServer) RevokeToken(ctx context.Context, req *authenticationv1.RevokeTokenRequest) (*authenticationv1.RevokeTokenResponse, error) {
	if s.issuer == nil {
		return nil, errNoIssuer("RevokeToken")
	}
	meta, err := s.issuer.RevokeToken(ctx, req.GetId())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &authenticationv1.RevokeTokenResponse{Meta: tokenMetaToProto(meta)}, nil
}

func (s *grpcServer) ListTokens(ctx context.Context, req *authenticationv1.ListTokensRequest) (*authenticationv1.ListTokensResponse, error) {
	if s.issuer == nil {
		return nil, errNoIssuer("ListTokens")
	}
	items, err := s.issuer.ListTokens(ctx, req.GetOwner())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	out := &authenticationv1.ListTokensResponse{}
	for i := range items {
		out.Items = append(out.Items, tokenMetaToProto(&items[i]))
	}
	return out, nil
}
