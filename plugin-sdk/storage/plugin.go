// Package storage is the contract of storage plugins: blobs kept by scope
// (a pipeline, a run, or a job of a run), written and read as streams,
// listed, deleted, and pruned for retention.
//
// Keys are relative, slash-separated paths confined to their scope: the
// same key in two runs names two objects, and no key reaches outside its
// scope. An object becomes visible only once it has been written
// completely; a failed or cancelled Put leaves nothing behind.
package storage

import (
	"context"
	"io"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	storagev1 "github.com/palvella/palvella/proto/palvella/storage/v1"
	"google.golang.org/grpc"
)

// Storage is implemented by storage plugins.
type Storage interface {
	sdk.Plugin
	// Put stores the contents of r under ref, replacing any object there,
	// and returns its size and sha256. If r fails or ctx ends before r is
	// read to its end, nothing is stored.
	Put(ctx context.Context, ref ObjectRef, r io.Reader) (*ObjectInfo, error)
	// Get opens an object for reading, or returns sdk.ErrNotFound. The
	// caller closes the reader.
	Get(ctx context.Context, ref ObjectRef) (io.ReadCloser, *ObjectInfo, error)
	// Stat describes an object, or returns sdk.ErrNotFound.
	Stat(ctx context.Context, ref ObjectRef) (*ObjectInfo, error)
	// List returns a page of the objects of a scope whose keys start with
	// req.Prefix, sorted by key.
	List(ctx context.Context, req *ListRequest) (*ListResponse, error)
	// Delete removes an object, or returns sdk.ErrNotFound.
	Delete(ctx context.Context, ref ObjectRef) error
	// Prune deletes every object of scopes of the given kind last modified
	// before olderThan, and returns how many it deleted.
	Prune(ctx context.Context, kind ScopeKind, olderThan time.Time) (int64, error)
}

// ScopeKind says which parts of a Scope are set.
type ScopeKind int

// Scope kinds.
const (
	ScopeUnspecified ScopeKind = iota
	// ScopePipeline: Namespace and Pipeline.
	ScopePipeline
	// ScopeRun: Namespace, Pipeline and Run.
	ScopeRun
	// ScopeJob: Namespace, Pipeline, Run and Job.
	ScopeJob
)

func (k ScopeKind) String() string {
	switch k {
	case ScopePipeline:
		return "pipeline"
	case ScopeRun:
		return "run"
	case ScopeJob:
		return "job"
	}
	return "unspecified"
}

// Scope confines keys: a key of one scope never reaches another's objects.
type Scope struct {
	Kind      ScopeKind `json:"kind"`
	Namespace string    `json:"namespace"`
	Pipeline  string    `json:"pipeline"`
	// Run is the run's ID, for run and job scopes.
	Run string `json:"run,omitempty"`
	// Job is the job's name, for the job scope.
	Job string `json:"job,omitempty"`
}

// ObjectRef names an object.
type ObjectRef struct {
	Scope Scope `json:"scope"`
	// Key is a relative, slash-separated path with no empty, "." or ".."
	// element; see ValidateKey.
	Key string `json:"key"`
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Ref  ObjectRef `json:"ref"`
	Size int64     `json:"size"`
	// SHA256 is the hex-encoded sha256 of the contents.
	SHA256     string    `json:"sha256"`
	ModifiedAt time.Time `json:"modifiedAt"`
}

// ListRequest selects a page of the objects of a scope.
type ListRequest struct {
	Scope Scope
	// Prefix keeps keys that start with it; it need not end at a "/".
	Prefix string
	// PageSize is the largest number of items returned; 0 means the
	// plugin's default.
	PageSize int
	// PageToken is the NextPageToken of the previous page.
	PageToken string
}

// ListResponse is one page of objects.
type ListResponse struct {
	Items []ObjectInfo
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Storage
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's storage service, for sdk.Serve.
func Service(impl Storage) sdk.Service {
	return sdk.Service{Category: sdk.CategoryStorage, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the storage service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	storagev1.RegisterStorageServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Storage that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
