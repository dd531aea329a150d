// Package database is the contract of database plugins: the core's state.
//
// A database holds typed resource documents with revisions (get, list with
// paging and label selectors, create, update with an expected revision,
// delete, watch) and a work queue with leases (enqueue, lease with a TTL,
// renew, ack, nack). Only the server calls it.
//
// Revisions are global: every write (create, update, delete) takes the next
// revision of the whole database, so revisions increase monotonically and a
// watcher can resume after the last revision it saw.
package database

import (
	"context"
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	databasev1 "github.com/palvella/palvella/proto/palvella/database/v1"
	"google.golang.org/grpc"
)

// Database is implemented by database plugins.
type Database interface {
	sdk.Plugin

	// Get returns one resource, or sdk.ErrNotFound.
	Get(ctx context.Context, key Key) (*Resource, error)
	// List returns a page of the resources of a kind, sorted by namespace
	// and name.
	List(ctx context.Context, req *ListRequest) (*ListResponse, error)
	// Create stores a new resource with the next revision, or returns
	// sdk.ErrAlreadyExists. Revision, CreatedAt and UpdatedAt of res are
	// ignored.
	Create(ctx context.Context, res *Resource) (*Resource, error)
	// Update replaces a resource if its stored revision equals res.Revision;
	// otherwise it returns sdk.ErrConflict (or sdk.ErrNotFound when there is
	// no such resource). The stored resource gets the next revision.
	Update(ctx context.Context, res *Resource) (*Resource, error)
	// Delete removes a resource, or returns sdk.ErrNotFound. With a non-zero
	// ExpectedRevision it returns sdk.ErrConflict when the stored revision
	// differs.
	Delete(ctx context.Context, req *DeleteRequest) error
	// Watch calls fn, in revision order, with each change of a kind with a
	// revision greater than req.AfterRevision, until ctx ends (it then
	// returns ctx's error) or fn returns an error (Watch returns it). A
	// database may compact old history: watching after a compacted revision
	// fails with sdk.ErrFailedPrecondition, and the caller lists again and
	// watches after the list's Revision.
	Watch(ctx context.Context, req *WatchRequest, fn func(Event) error) error

	// Enqueue adds an item to a queue. With an ID that is already queued it
	// returns the queued item and changes nothing.
	Enqueue(ctx context.Context, req *EnqueueRequest) (*QueueItem, error)
	// Lease hands out at most one available item of a queue for req.TTL,
	// counting the attempt. It returns nil, nil when no item is available.
	// An item whose lease expired is available again.
	Lease(ctx context.Context, req *LeaseRequest) (*QueueItem, error)
	// Renew extends a lease to now + req.TTL.
	Renew(ctx context.Context, req *RenewRequest) (*QueueItem, error)
	// Ack removes a leased item: its work is done.
	Ack(ctx context.Context, req *AckRequest) error
	// Nack returns a leased item to its queue, available again after
	// req.RetryAfter.
	Nack(ctx context.Context, req *NackRequest) error
}

// Batcher is a Database that applies several writes in one transaction:
// all of them or, when one fails, none. It is optional: the core asks for
// it by type assertion (the gRPC client always has it, and answers
// sdk.ErrUnimplemented for a plugin without it) and otherwise makes the
// writes one by one. The core uses it where one change spans several
// documents and the queue, such as a run's creation.
type Batcher interface {
	// Batch applies ops in order, each as its own method would (Create,
	// Update, Delete, Enqueue, with their errors), and returns one result
	// per op. When an op fails nothing of the batch is kept, and the error
	// is that op's, wrapped in a *BatchError that says which it was. Each
	// write takes its own revision, and watchers see each change.
	Batch(ctx context.Context, ops []Op) ([]OpResult, error)
}

// Op is one write of a batch: exactly one field is set.
type Op struct {
	Create  *Resource
	Update  *Resource
	Delete  *DeleteRequest
	Enqueue *EnqueueRequest
	// Ack removes a leased item as Ack does: with the write that records
	// its job's outcome, one call instead of two.
	Ack *AckRequest
}

// OpResult is what an op wrote: the resource after a create or update,
// the item after an enqueue, neither after a delete.
type OpResult struct {
	Resource *Resource
	Item     *QueueItem
}

// BatchError is the failure of one op of a batch, none of which was kept.
type BatchError struct {
	// Index of the op in the batch.
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("batch op %d: %v", e.Index, e.Err) }

// Unwrap returns the op's error, so that errors.Is sees its sentinel.
func (e *BatchError) Unwrap() error { return e.Err }

// Renew, Ack and Nack return sdk.ErrNotFound for an unknown item and
// sdk.ErrConflict when the lease token is not the item's current one (the
// lease expired and someone else holds the item, or it was never leased).

// Key names a resource. Namespace may be empty for resources that belong to
// no namespace.
type Key struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Resource is a typed document. The database stores Data as opaque bytes
// (the core's encoding of metadata, spec and status) and indexes the key,
// the labels and the revision.
type Resource struct {
	Key       Key               `json:"key"`
	Revision  int64             `json:"revision"`
	Labels    map[string]string `json:"labels,omitempty"`
	Data      []byte            `json:"data,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
}

// ListRequest selects a page of resources of one kind.
type ListRequest struct {
	Kind string
	// Namespace limits the list to one namespace; empty lists every
	// namespace.
	Namespace string
	// LabelSelector keeps resources that have every label given, with the
	// same value.
	LabelSelector map[string]string
	// PageSize is the largest number of items returned; 0 means the
	// plugin's default.
	PageSize int
	// PageToken is the NextPageToken of the previous page, empty for the
	// first page.
	PageToken string
}

// ListResponse is one page of resources.
type ListResponse struct {
	Items []Resource
	// NextPageToken is empty on the last page.
	NextPageToken string
	// Revision is the database's revision when the page was read. Watching
	// after it follows every change made since, without a gap.
	Revision int64
}

// DeleteRequest removes a resource.
type DeleteRequest struct {
	Key Key
	// ExpectedRevision, when not 0, must equal the stored revision.
	ExpectedRevision int64
}

// WatchRequest selects the changes to watch.
type WatchRequest struct {
	Kind string
	// Namespace limits the watch to one namespace; empty watches every
	// namespace.
	Namespace string
	// AfterRevision: changes with a greater revision are sent.
	AfterRevision int64
}

// EventType says what happened to a resource.
type EventType int

// Event types.
const (
	EventUnspecified EventType = iota
	EventCreated
	EventUpdated
	EventDeleted
)

func (t EventType) String() string {
	switch t {
	case EventCreated:
		return "created"
	case EventUpdated:
		return "updated"
	case EventDeleted:
		return "deleted"
	}
	return "unspecified"
}

// Event is one change seen by Watch. For a deletion, Resource holds the
// last stored state with the revision of the deletion.
type Event struct {
	Type     EventType
	Resource Resource
}

// QueueItem is an item of a work queue.
type QueueItem struct {
	ID      string
	Queue   string
	Payload []byte
	// Attempts counts the leases handed out for this item.
	Attempts int
	// LeaseToken is required to renew, ack or nack; it is empty when the
	// item is not leased.
	LeaseToken     string
	LeaseExpiresAt time.Time
	EnqueuedAt     time.Time
}

// EnqueueRequest adds an item to a queue.
type EnqueueRequest struct {
	Queue   string
	Payload []byte
	// Delay: the item is not handed out before it has passed.
	Delay time.Duration
	// ID is optional; the plugin generates one when it is empty.
	ID string
}

// LeaseRequest asks for one item of a queue.
type LeaseRequest struct {
	Queue string
	// Holder names who leases, for operators.
	Holder string
	// TTL is how long the lease lasts unless renewed; it must be positive.
	TTL time.Duration
}

// RenewRequest extends a lease.
type RenewRequest struct {
	ID         string
	LeaseToken string
	TTL        time.Duration
}

// AckRequest completes a leased item.
type AckRequest struct {
	ID         string
	LeaseToken string
}

// NackRequest returns a leased item to its queue.
type NackRequest struct {
	ID         string
	LeaseToken string
	// RetryAfter is how long the item waits before it is handed out again.
	RetryAfter time.Duration
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Database
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's database service, for sdk.Serve.
func Service(impl Database) sdk.Service {
	return sdk.Service{Category: sdk.CategoryDatabase, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the database service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	databasev1.RegisterDatabaseServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Database that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
