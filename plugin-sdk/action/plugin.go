// Package action is the contract of action plugins: action types that run
// one action of a job with its parameters and the run's context, streaming
// log lines and outputs, and ending with a status.
//
// The core's worker calls Run for every action of a job in order. Outputs
// are JSON-like values (strings, float64 or int numbers, booleans, []any,
// map[string]any) so that later expressions can index them, as in
// actions.version_match.outputs.groups[1]. Over the wire numbers arrive as
// float64.
package action

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	actionv1 "github.com/palvella/palvella/proto/palvella/action/v1"
	"google.golang.org/grpc"
)

// Action is implemented by action plugins.
type Action interface {
	sdk.Plugin
	// Run runs one action of a type the plugin's manifest lists. Log lines
	// and outputs go to events as they happen; the returned Result ends the
	// action and holds every output, including those sent to events.
	//
	// An action that ran and did not succeed returns a Result with status
	// failure, not an error. Errors are for requests that cannot be run: an
	// unknown type (sdk.ErrInvalidArgument about "type"), parameters of the
	// wrong shape (sdk.ErrInvalidArgument about "params.<name>"), a missing
	// host service (sdk.ErrFailedPrecondition), or a cancelled ctx
	// (ctx.Err()).
	Run(ctx context.Context, req *RunRequest, events Events) (*Result, error)
}

// RunRequest is one action to run.
type RunRequest struct {
	// Type is the action type, one of the manifest's action types.
	Type string
	// Name is the action's name in its job.
	Name string
	// Params are the action's arguments, with expressions already
	// interpolated by the core.
	Params map[string]any
	// Context is the expression context: params, job, jobs, actions,
	// trigger and run.
	Context map[string]any
	// Ref identifies the run, job and attempt. The SDK puts it into the ctx
	// given to Run, so calls to sdk.Host carry it.
	Ref sdk.ExecutionRef
}

// Events receives what an action reports while it runs. Implementations
// are safe for use by several goroutines.
type Events interface {
	// Log records one line of the action's log. stream is "stdout",
	// "stderr" or "system".
	Log(stream, text string) error
	// Output records one output as soon as it is known, for live
	// followers. The Result repeats it.
	Output(key string, value any) error
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamSystem = "system"
)

// Discard is an Events that drops everything.
var Discard Events = discard{}

type discard struct{}

func (discard) Log(string, string) error { return nil }
func (discard) Output(string, any) error { return nil }

// Result is how an action ended.
type Result struct {
	Status  Status
	Message string
	// Outputs holds every output of the action.
	Outputs map[string]any
}

// Status is the final status of an action.
type Status int

// Action statuses. Values are only ever added; they match the wire enum.
const (
	StatusUnspecified Status = iota
	StatusSuccess
	StatusFailure
	// StatusWaiting holds the job until someone approves or rejects.
	StatusWaiting
	StatusSkipped
	StatusCancelled
)

var statusNames = [...]string{
	StatusUnspecified: "unspecified",
	StatusSuccess:     "success",
	StatusFailure:     "failure",
	StatusWaiting:     "waiting",
	StatusSkipped:     "skipped",
	StatusCancelled:   "cancelled",
}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("status(%d)", int(s))
	}
	return statusNames[s]
}

// Valid reports whether s is a status an action may end with.
func (s Status) Valid() bool { return s > StatusUnspecified && int(s) < len(statusNames) }

// ParseStatus parses a status name such as "success".
func ParseStatus(s string) (Status, error) {
	for i, name := range statusNames {
		if i != 0 && strings.EqualFold(s, name) {
			return Status(i), nil
		}
	}
	return StatusUnspecified, sdk.Errorf(sdk.ErrInvalidArgument, "status", "unknown action status %q (want one of %s)", s, strings.Join(statusNames[1:], ", "))
}

// MarshalJSON writes the status's name.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status name.
func (s *Status) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("action status must be a string: %w", err)
	}
	v, err := ParseStatus(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ListTypes returns the action types a plugin provides. Over gRPC it asks
// the plugin's ActionService; in-process it reads the manifest.
func ListTypes(ctx context.Context, a Action) ([]sdk.TypeInfo, error) {
	if l, ok := a.(interface {
		listTypes(context.Context) ([]sdk.TypeInfo, error)
	}); ok {
		return l.listTypes(ctx)
	}
	m, err := a.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("list action types: %w", err)
	}
	return m.TypesOf(sdk.CategoryAction), nil
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Action
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's action service, for sdk.Serve.
func Service(impl Action) sdk.Service {
	return sdk.Service{Category: sdk.CategoryAction, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the action service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	actionv1.RegisterActionServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns an Action that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
