package database

import (
	"context"
	"errors"
	"fmt"
	"io"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	databasev1 "github.com/palvella/palvella/proto/palvella/database/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client databasev1.DatabaseServiceClient
}

var _ Database = (*grpcClient)(nil)

// NewClient returns a Database that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Database {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: databasev1.NewDatabaseServiceClient(conn)}
}

func (c *grpcClient) Get(ctx context.Context, key Key) (*Resource, error) {
	resp, err := c.client.Get(ctx, &databasev1.GetRequest{Key: keyToProto(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s %q: %w", key.Kind, key.Name, sdk.FromGRPC(err))
	}
	if resp.GetResource() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "resource", "plugin answered Get without a resource")
	}
	r := resourceFromProto(resp.GetResource())
	return &r, nil
}

func (c *grpcClient) List(ctx context.Context, req *ListRequest) (*ListResponse, error) {
	resp, err := c.client.List(ctx, &databasev1.ListRequest{
		Kind: req.Kind, Namespace: req.Namespace, LabelSelector: req.LabelSelector,
		PageSize: int32(min(max(req.PageSize, -1), MaxPageSize)), PageToken: req.PageToken,
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", req.Kind, sdk.FromGRPC(err))
	}
	out := &ListResponse{NextPageToken: resp.GetNextPageToken(), Revision: resp.GetRevision(), Items: make([]Resource, 0, len(resp.GetItems()))}
	for _, r := range resp.GetItems() {
		out.Items = append(out.Items, resourceFromProto(r))
	}
	return out, nil
}

func (c *grpcClient) Create(ctx context.Context, res *Resource) (*Resource, error) {
	if res == nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "resource", "is required")
	}
	resp, err := c.client.Create(ctx, &databasev1.CreateRequest{Resource: resourceToProto(res)})
	if err != nil {
		return nil, fmt.Errorf("create %s %q: %w", res.Key.Kind, res.Key.Name, sdk.FromGRPC(err))
	}
	return oneResource(resp.GetResource(), "Create")
}

func (c *grpcClient) Update(ctx context.Context, res *Resource) (*Resource, error) {
	if res == nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "resource", "is required")
	}
	resp, err := c.client.Update(ctx, &databasev1.UpdateRequest{Resource: resourceToProto(res)})
	if err != nil {
		return nil, fmt.Errorf("update %s %q: %w", res.Key.Kind, res.Key.Name, sdk.FromGRPC(err))
	}
	return oneResource(resp.GetResource(), "Update")
}

func oneResource(r *databasev1.Resource, method string) (*Resource, error) {
	if r == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "resource", "plugin answered %s without a resource", method)
	}
	out := resourceFromProto(r)
	return &out, nil
}

func (c *grpcClient) Delete(ctx context.Context, req *DeleteRequest) error {
	if _, err := c.client.Delete(ctx, &databasev1.DeleteRequest{Key: keyToProto(req.Key), ExpectedRevision: req.ExpectedRevision}); err != nil {
		return fmt.Errorf("delete %s %q: %w", req.Key.Kind, req.Key.Name, sdk.FromGRPC(err))
	}
	return nil
}

func (c *grpcClient) Watch(ctx context.Context, req *WatchRequest, fn func(Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when fn stops the watch
	stream, err := c.client.Watch(ctx, &databasev1.WatchRequest{Kind: req.Kind, Namespace: req.Namespace, AfterRevision: req.AfterRevision})
	if err != nil {
		return fmt.Errorf("watch %q: %w", req.Kind, sdk.FromGRPC(err))
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("watch %q: %w", req.Kind, sdk.FromGRPC(err))
		}
		if err := fn(Event{Type: eventTypeFromProto(ev.GetType()), Resource: resourceFromProto(ev.GetResource())}); err != nil {
			return err
		}
	}
}

func (c *grpcClient) Enqueue(ctx context.Context, req *EnqueueRequest) (*QueueItem, error) {
	resp, err := c.client.Enqueue(ctx, &databasev1.EnqueueRequest{Queue: req.Queue, Payload: req.Payload, Delay: durationToProto(req.Delay), Id: req.ID})
	if err != nil {
		return nil, fmt.Errorf("enqueue into %q: %w", req.Queue, sdk.FromGRPC(err))
	}
	if resp.GetItem() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "item", "plugin answered Enqueue without an item")
	}
	return itemFromProto(resp.GetItem()), nil
}

func (c *grpcClient) Lease(ctx context.Context, req *LeaseRequest) (*QueueItem, error) {
	resp, err := c.client.Lease(ctx, &databasev1.LeaseRequest{Queue: req.Queue, Holder: req.Holder, Ttl: durationToProto(req.TTL)})
	if err != nil {
		return nil, fmt.Errorf("lease from %q: %w", req.Queue, sdk.FromGRPC(err))
	}
	if !resp.GetFound() {
		return nil, nil
	}
	if resp.GetItem() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "item", "plugin answered Lease with found but no item")
	}
	return itemFromProto(resp.GetItem()), nil
}

func (c *grpcClient) Renew(ctx context.Context, req *RenewRequest) (*QueueItem, error) {
	resp, err := c.client.Renew(ctx, &databasev1.RenewRequest{Id: req.ID, LeaseToken: req.LeaseToken, Ttl: durationToProto(req.TTL)})
	if err != nil {
		return nil, fmt.Errorf("renew lease of %q: %w", req.ID, sdk.FromGRPC(err))
	}
	if resp.GetItem() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "item", "plugin answered Renew without an item")
	}
	return itemFromProto(resp.GetItem()), nil
}

func (c *grpcClient) Ack(ctx context.Context, req *AckRequest) error {
	if _, err := c.client.Ack(ctx, &databasev1.AckRequest{Id: req.ID, LeaseToken: req.LeaseToken}); err != nil {
		return fmt.Errorf("ack %q: %w", req.ID, sdk.FromGRPC(err))
	}
	return nil
}

func (c *grpcClient) Nack(ctx context.Context, req *NackRequest) error {
	if _, err := c.client.Nack(ctx, &databasev1.NackRequest{Id: req.ID, LeaseToken: req.LeaseToken, RetryAfter: durationToProto(req.RetryAfter)}); err != nil {
		return fmt.Errorf("nack %q: %w", req.ID, sdk.FromGRPC(err))
	}
	return nil
}
