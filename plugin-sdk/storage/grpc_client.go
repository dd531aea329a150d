package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	storagev1 "github.com/palvella/palvella/proto/palvella/storage/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type grpcClient struct {
	*sdk.BaseClient
	client storagev1.StorageServiceClient
}

var _ Storage = (*grpcClient)(nil)

// NewClient returns a Storage that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Storage {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: storagev1.NewStorageServiceClient(conn)}
}

func (c *grpcClient) Put(ctx context.Context, ref ObjectRef, r io.Reader) (*ObjectInfo, error) {
	// Cancelling the stream, rather than closing it, tells the plugin the
	// object is incomplete, so it stores nothing.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.Put(ctx)
	if err != nil {
		return nil, fmt.Errorf("put object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	err = stream.Send(&storagev1.PutRequest{Msg: &storagev1.PutRequest_Ref{Ref: refToProto(ref)}})
	if err == nil {
		err = sdk.SendChunks(r, func(b []byte) error {
			return stream.Send(&storagev1.PutRequest{Msg: &storagev1.PutRequest_Chunk{Chunk: b}})
		})
	}
	if err != nil && !errors.Is(err, io.EOF) {
		cancel()
		return nil, fmt.Errorf("put object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	// io.EOF from Send means the plugin ended the call; CloseAndRecv has
	// its answer.
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("put object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	if resp.GetInfo() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "info", "plugin answered Put without object info")
	}
	return infoFromProto(resp.GetInfo()), nil
}

func (c *grpcClient) Get(ctx context.Context, ref ObjectRef) (io.ReadCloser, *ObjectInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.client.Get(ctx, &storagev1.GetRequest{Ref: refToProto(ref)})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("get object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("get object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	if first.GetInfo() == nil {
		cancel()
		return nil, nil, sdk.Errorf(sdk.ErrInternal, "info", "plugin answered Get without object info")
	}
	info := infoFromProto(first.GetInfo())
	rc := sdk.NewChunkReader(func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return msg.GetChunk(), nil
	}, cancel)
	return &verifyingReader{rc: rc, want: info, h: sha256.New()}, info, nil
}

// verifyingReader checks, at the end of the stream, that what arrived has
// the size and sha256 the plugin announced.
type verifyingReader struct {
	rc   io.ReadCloser
	want *ObjectInfo
	h    hash.Hash
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if v.n != v.want.Size || (v.want.SHA256 != "" && hex.EncodeToString(v.h.Sum(nil)) != v.want.SHA256) {
			return n, sdk.Errorf(sdk.ErrInternal, "", "object %q arrived with %d bytes that do not match its size %d and sha256", v.want.Ref.Key, v.n, v.want.Size)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

func (c *grpcClient) Stat(ctx context.Context, ref ObjectRef) (*ObjectInfo, error) {
	resp, err := c.client.Stat(ctx, &storagev1.StatRequest{Ref: refToProto(ref)})
	if err != nil {
		return nil, fmt.Errorf("stat object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	if resp.GetInfo() == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "info", "plugin answered Stat without object info")
	}
	return infoFromProto(resp.GetInfo()), nil
}

func (c *grpcClient) List(ctx context.Context, req *ListRequest) (*ListResponse, error) {
	resp, err := c.client.List(ctx, &storagev1.ListRequest{
		Scope: scopeToProto(req.Scope), Prefix: req.Prefix,
		PageSize: int32(min(max(req.PageSize, -1), MaxPageSize)), PageToken: req.PageToken,
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", sdk.FromGRPC(err))
	}
	out := &ListResponse{NextPageToken: resp.GetNextPageToken(), Items: make([]ObjectInfo, 0, len(resp.GetItems()))}
	for _, it := range resp.GetItems() {
		out.Items = append(out.Items, *infoFromProto(it))
	}
	return out, nil
}

func (c *grpcClient) Delete(ctx context.Context, ref ObjectRef) error {
	if _, err := c.client.Delete(ctx, &storagev1.DeleteRequest{Ref: refToProto(ref)}); err != nil {
		return fmt.Errorf("delete object %q: %w", ref.Key, sdk.FromGRPC(err))
	}
	return nil
}

func (c *grpcClient) Prune(ctx context.Context, kind ScopeKind, olderThan time.Time) (int64, error) {
	resp, err := c.client.Prune(ctx, &storagev1.PruneRequest{Kind: storagev1.ScopeKind(kind), OlderThan: timestamppb.New(olderThan)})
	if err != nil {
		return 0, fmt.Errorf("prune %s objects: %w", kind, sdk.FromGRPC(err))
	}
	return resp.GetDeleted(), nil
}
