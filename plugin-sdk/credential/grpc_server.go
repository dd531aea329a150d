package credential

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	credentialv1 "github.com/palvella/palvella/proto/palvella/credential/v1"
)

type grpcServer struct {
	credentialv1.UnimplementedCredentialServiceServer
	impl Credential
}

func (s *grpcServer) Put(ctx context.Context, req *credentialv1.PutRequest) (*credentialv1.PutResponse, error) {
	cred := req.GetCredential()
	meta, err := s.impl.Put(ctx, &PutRequest{
		Name: cred.GetMeta().GetName(), Type: cred.GetMeta().GetType(),
		Labels: cred.GetMeta().GetLabels(), Data: cred.GetData(),
	})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &credentialv1.PutResponse{Meta: metaToProto(*meta)}, nil
}

func (s *grpcServer) Get(ctx context.Context, req *credentialv1.GetRequest) (*credentialv1.GetResponse, error) {
	sec, err := s.impl.Get(ctx, req.GetName())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &credentialv1.GetResponse{Credential: &credentialv1.Credential{Meta: metaToProto(sec.Meta), Data: sec.Data}}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *credentialv1.DeleteRequest) (*credentialv1.DeleteResponse, error) {
	if err := s.impl.Delete(ctx, req.GetName()); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &credentialv1.DeleteResponse{}, nil
}

func (s *grpcServer) List(ctx context.Context, req *credentialv1.ListRequest) (*credentialv1.ListResponse, error) {
	items, err := s.impl.List(ctx, req.GetPrefix())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	out := &credentialv1.ListResponse{}
	for _, m := range items {
		out.Items = append(out.Items, metaToProto(m))
	}
	return out, nil
}
