package database

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	databasev1 "github.com/palvella/palvella/proto/palvella/database/v1"
	"google.golang.org/grpc"
)

type grpcServer struct {
	databasev1.UnimplementedDatabaseServiceServer
	impl Database
}

func (s *grpcServer) Get(ctx context.Context, req *databasev1.GetRequest) (*databasev1.GetResponse, error) {
	r, err := s.impl.Get(ctx, keyFromProto(req.GetKey()))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.GetResponse{Resource: resourceToProto(r)}, nil
}

func (s *grpcServer) List(ctx context.Context, req *databasev1.ListRequest) (*databasev1.ListResponse, error) {
	resp, err := s.impl.List(ctx, &ListRequest{
		Kind: req.GetKind(), Namespace: req.GetNamespace(), LabelSelector: req.GetLabelSelector(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	out := &databasev1.ListResponse{NextPageToken: resp.NextPageToken, Revision: resp.Revision}
	for i := range resp.Items {
		out.Items = append(out.Items, resourceToProto(&resp.Items[i]))
	}
	return out, nil
}

func (s *grpcServer) Create(ctx context.Context, req *databasev1.CreateRequest) (*databasev1.CreateResponse, error) {
	if req.GetResource() == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "resource", "is required"))
	}
	in := resourceFromProto(req.GetResource())
	r, err := s.impl.Create(ctx, &in)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.CreateResponse{Resource: resourceToProto(r)}, nil
}

func (s *grpcServer) Update(ctx context.Context, req *databasev1.UpdateRequest) (*databasev1.UpdateResponse, error) {
	if req.GetResource() == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "resource", "is required"))
	}
	in := resourceFromProto(req.GetResource())
	r, err := s.impl.Update(ctx, &in)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.UpdateResponse{Resource: resourceToProto(r)}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *databasev1.DeleteRequest) (*databasev1.DeleteResponse, error) {
	if err := s.impl.Delete(ctx, &DeleteRequest{Key: keyFromProto(req.GetKey()), ExpectedRevision: req.GetExpectedRevision()}); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.DeleteResponse{}, nil
}

func (s *grpcServer) Watch(req *databasev1.WatchRequest, stream grpc.ServerStreamingServer[databasev1.WatchEvent]) error {
	err := s.impl.Watch(stream.Context(), &WatchRequest{Kind: req.GetKind(), Namespace: req.GetNamespace(), AfterRevision: req.GetAfterRevision()},
		func(ev Event) error {
			return stream.Send(&databasev1.WatchEvent{Type: eventTypeToProto(ev.Type), Resource: resourceToProto(&ev.Resource)})
		})
	return sdk.ToGRPC(err)
}

func (s *grpcServer) Enqueue(ctx context.Context, req *databasev1.EnqueueRequest) (*databasev1.EnqueueResponse, error) {
	it, err := s.impl.Enqueue(ctx, &EnqueueRequest{Queue: req.GetQueue(), Payload: req.GetPayload(), Delay: durationFromProto(req.GetDelay()), ID: req.GetId()})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.EnqueueResponse{Item: itemToProto(it)}, nil
}

func (s *grpcServer) Lease(ctx context.Context, req *databasev1.LeaseRequest) (*databasev1.LeaseResponse, error) {
	it, err := s.impl.Lease(ctx, &LeaseRequest{Queue: req.GetQueue(), Holder: req.GetHolder(), TTL: durationFromProto(req.GetTtl())})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if it == nil {
		return &databasev1.LeaseResponse{}, nil
	}
	return &databasev1.LeaseResponse{Found: true, Item: itemToProto(it)}, nil
}

func (s *grpcServer) Renew(ctx context.Context, req *databasev1.RenewRequest) (*databasev1.RenewResponse, error) {
	it, err := s.impl.Renew(ctx, &RenewRequest{ID: req.GetId(), LeaseToken: req.GetLeaseToken(), TTL: durationFromProto(req.GetTtl())})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.RenewResponse{Item: itemToProto(it)}, nil
}

func (s *grpcServer) Ack(ctx context.Context, req *databasev1.AckRequest) (*databasev1.AckResponse, error) {
	if err := s.impl.Ack(ctx, &AckRequest{ID: req.GetId(), LeaseToken: req.GetLeaseToken()}); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.AckResponse{}, nil
}

func (s *grpcServer) Nack(ctx context.Context, req *databasev1.NackRequest) (*databasev1.NackResponse, error) {
	if err := s.impl.Nack(ctx, &NackRequest{ID: req.GetId(), LeaseToken: req.GetLeaseToken(), RetryAfter: durationFromProto(req.GetRetryAfter())}); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &databasev1.NackResponse{}, nil
}
