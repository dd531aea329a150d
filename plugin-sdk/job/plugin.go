// Package job is the contract of job plugins: reusable job types that a
// pipeline names with `uses: plugin/type` and configures with `with`. A job
// plugin expands one job of its type into the concrete actions the core's
// worker runs, and the storage entries it fetches before them and keeps
// after them.
package job

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	jobv1 "github.com/palvella/palvella/proto/palvella/job/v1"
	"google.golang.org/grpc"
)

// Job is implemented by job plugins.
type Job interface {
	sdk.Plugin
	// Expand turns one job of a type the manifest lists into actions.
	// Problems with the request are errors: an unknown type
	// (sdk.ErrInvalidArgument about "type"), a missing or ill-typed argument
	// (sdk.ErrInvalidArgument about "with.<name>"). Warnings travel as
	// diagnostics in the response.
	Expand(ctx context.Context, req *ExpandRequest) (*ExpandResponse, error)
}

// ExpandRequest is one job to expand.
type ExpandRequest struct {
	// Type is the job type, one of the manifest's job types.
	Type string
	// JobName is the job's name in the pipeline.
	JobName string
	// With holds the job's arguments, with expressions interpolated.
	With map[string]any
	// Context holds the pipeline params and the run's context, for
	// reference.
	Context map[string]any
}

// ExpandResponse is what a job turns into.
type ExpandResponse struct {
	// Actions run in order, as if written in the pipeline.
	Actions []ActionSpec
	// StorageGet entries are fetched into the workspace before the actions.
	StorageGet []StorageEntry
	// StoragePut entries are stored from the workspace after the actions.
	StoragePut []StorageEntry
	// Diagnostics are warnings about the request.
	Diagnostics []sdk.Diagnostic
}

// ActionSpec is one action, as in a pipeline's `actions` list.
type ActionSpec struct {
	Name string
	// Type is an action type: "run", "approval", "match", ... or
	// "plugin/type".
	Type string
	// Params are the action's arguments (run, input, pattern, expr, ...).
	Params map[string]any
	// If is an expression; false skips the action. Empty runs it.
	If string
	// OnSuccess and OnFailure are "continue", "succeed" or "fail"; empty
	// means the pipeline defaults (continue, fail).
	OnSuccess string
	OnFailure string
}

// Storage scopes.
const (
	ScopeRun      = "run"
	ScopePipeline = "pipeline"
)

// StorageEntry is a workspace path kept in storage.
type StorageEntry struct {
	// Path is relative to the job's workspace.
	Path string
	// Scope is ScopeRun (the default when empty) or ScopePipeline.
	Scope string
	// Key in storage; empty means Path. A job reads what another job of
	// the same run put by naming its key, such as "<plan_job>/tfplan".
	Key string
}

// ListTypes returns the job types a plugin provides. Over gRPC it asks the
// plugin's JobService; in-process it reads the manifest.
func ListTypes(ctx context.Context, j Job) ([]sdk.TypeInfo, error) {
	if l, ok := j.(interface {
		listTypes(context.Context) ([]sdk.TypeInfo, error)
	}); ok {
		return l.listTypes(ctx)
	}
	m, err := j.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("list job types: %w", err)
	}
	return m.TypesOf(sdk.CategoryJob), nil
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Job
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's job service, for sdk.Serve.
func Service(impl Job) sdk.Service {
	return sdk.Service{Category: sdk.CategoryJob, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the job service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	jobv1.RegisterJobServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Job that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
