package api

import (
	"context"
	"io"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Backend is what the HTTP API serves. core/orchestrator implements it.
// Errors wrap the sdk sentinels (sdk.ErrNotFound, sdk.ErrInvalidArgument
// with a Field, sdk.ErrAlreadyExists, sdk.ErrConflict,
// sdk.ErrFailedPrecondition, ...) and are mapped to HTTP statuses by the
// API. A pipeline that fails validation returns an error for which
// errors.As(err, &ValidationError{}) holds, listing every problem.
type Backend interface {
	ApplyPipeline(ctx context.Context, req ApplyRequest) (*ApplyResult, error)
	// ValidatePipeline checks a pipeline file without applying it.
	ValidatePipeline(ctx context.Context, filename string, source []byte) error
	ListPipelines(ctx context.Context, namespace string, page PageRequest) (*Page[resource.Pipeline], error)
	GetPipeline(ctx context.Context, namespace, name string) (*resource.Pipeline, error)
	ListPipelineVersions(ctx context.Context, namespace, name string) ([]resource.PipelineVersion, error)
	DeletePipeline(ctx context.Context, namespace, name string) error

	// StartRun starts a run; params are the `-p k=v` strings, coerced to the
	// declared types (an error names the param).
	StartRun(ctx context.Context, namespace, pipeline string, params map[string]string, trigger resource.TriggerInfo) (*resource.Run, error)
	ListRuns(ctx context.Context, namespace, pipeline string, page PageRequest) (*Page[resource.Run], error)
	GetRun(ctx context.Context, namespace, run string) (*resource.Run, error)
	CancelRun(ctx context.Context, namespace, run, reason string) (*resource.Run, error)
	// Decide approves or rejects a job waiting for approval. An empty job
	// means the only waiting job of the run.
	Decide(ctx context.Context, namespace, run, job string, approve bool, by, comment string) (*resource.Run, error)
	// ActionLog returns the log of one action: complete once the action
	// has ended, what there is so far while it runs.
	ActionLog(ctx context.Context, namespace, run, job, action string) (io.ReadCloser, error)

	Plugins(ctx context.Context) []pluginhost.Status
}

// PluginReloader is what POST /plugins/reload serves. The server's backend
// implements it next to [Backend]; a backend without it answers 501.
type PluginReloader interface {
	// ReloadPlugins re-reads the plugins to host and applies the
	// difference live (pluginhost.Manager.Sync).
	ReloadPlugins(ctx context.Context) (*ReloadResult, error)
}

// Authenticator checks a bearer token (the authentication plugin, behind
// the server).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*authentication.Identity, error)
}

// Authorizer decides whether an identity may use a method on a resource
// (the authorization plugin, behind the server).
type Authorizer interface {
	Authorize(ctx context.Context, id *authentication.Identity, resource, method string) (*authorization.Decision, error)
}
