package authorization

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	authorizationv1 "github.com/palvella/palvella/proto/palvella/authorization/v1"
)

type grpcServer struct {
	authorizationv1.UnimplementedAuthorizationServiceServer
	impl Authorization
}

func (s *grpcServer) Authorize(ctx context.Context, req *authorizationv1.AuthorizeRequest) (*authorizationv1.AuthorizeResponse, error) {
	d, err := s.impl.Authorize(ctx, authorizeRequestFromProto(req))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if d == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "decision", "plugin answered Authorize without a decision"))
	}
	return decisionToProto(d), nil
}
