package storage

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	storagev1 "github.com/palvella/palvella/proto/palvella/storage/v1"
	"google.golang.org/grpc"
)

type grpcServer struct {
	storagev1.UnimplementedStorageServiceServer
	impl Storage
}

func (s *grpcServer) Put(stream grpc.ClientStreamingServer[storagev1.PutRequest, storagev1.PutResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return sdk.ToGRPC(err)
	}
	if first.GetRef() == nil {
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "ref", "the first message of Put must carry the object's ref"))
	}
	ref := refFromProto(first.GetRef())
	r := sdk.NewChunkReader(func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if msg.GetRef() != nil {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "ref", "only the first message of Put may carry a ref")
		}
		return msg.GetChunk(), nil
	}, nil)
	info, err := s.impl.Put(stream.Context(), ref, r)
	if err != nil {
		return sdk.ToGRPC(err)
	}
	return stream.SendAndClose(&storagev1.PutResponse{Info: infoToProto(info)})
}

func (s *grpcServer) Get(req *storagev1.GetRequest, stream grpc.ServerStreamingServer[storagev1.GetResponse]) error {
	rc, info, err := s.impl.Get(stream.Context(), refFromProto(req.GetRef()))
	if err != nil {
		return sdk.ToGRPC(err)
	}
	defer rc.Close()
	if err := stream.Send(&storagev1.GetResponse{Msg: &storagev1.GetResponse_Info{Info: infoToProto(info)}}); err != nil {
		return err
	}
	return sdk.ToGRPC(sdk.SendChunks(rc, func(b []byte) error {
		return stream.Send(&storagev1.GetResponse{Msg: &storagev1.GetResponse_Chunk{Chunk: b}})
	}))
}

func (s *grpcServer) Stat(ctx context.Context, req *storagev1.StatRequest) (*storagev1.StatResponse, error) {
	info, err := s.impl.Stat(ctx, refFromProto(req.GetRef()))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &storagev1.StatResponse{Info: infoToProto(info)}, nil
}

func (s *grpcServer) List(ctx context.Context, req *storagev1.ListRequest) (*storagev1.ListResponse, error) {
	resp, err := s.impl.List(ctx, &ListRequest{
		Scope: scopeFromProto(req.GetScope()), Prefix: req.GetPrefix(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	out := &storagev1.ListResponse{NextPageToken: resp.NextPageToken}
	for i := range resp.Items {
		out.Items = append(out.Items, infoToProto(&resp.Items[i]))
	}
	return out, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *storagev1.DeleteRequest) (*storagev1.DeleteResponse, error) {
	if err := s.impl.Delete(ctx, refFromProto(req.GetRef())); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &storagev1.DeleteResponse{}, nil
}

func (s *grpcServer) Prune(ctx context.Context, req *storagev1.PruneRequest) (*storagev1.PruneResponse, error) {
	if req.GetOlderThan() == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "olderThan", "is required"))
	}
	n, err := s.impl.Prune(ctx, ScopeKind(req.GetKind()), req.GetOlderThan().AsTime())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &storagev1.PruneResponse{Deleted: n}, nil
}
