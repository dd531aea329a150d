// Package engine is the contract of engine plugins: where and how the
// commands of a job execute. The core sets up one workspace per job, runs
// commands in it (a script through a shell, or an argv) with their output
// streamed as it is produced, cancels them, and tears the workspace down
// when the job ends.
package engine

import (
	"context"
	"io/fs"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	enginev1 "github.com/palvella/palvella/proto/palvella/engine/v1"
	"google.golang.org/grpc"
)

// The names of the output streams passed to an Exec's output function.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Engine is implemented by engine plugins.
type Engine interface {
	sdk.Plugin
	// Setup prepares a fresh workspace for one job and returns its handle.
	Setup(ctx context.Context, req *SetupRequest) (*Workspace, error)
	// Exec runs one command in a workspace. Output is handed to out as it
	// is produced, one stream name (Stdout or Stderr) and chunk at a time;
	// an implementation never calls out concurrently, and it keeps the order
	// of each stream. If out returns an error the command is stopped and
	// Exec returns that error.
	//
	// A command that ran returns a result, whatever its exit code; it is
	// also a result, not an error, when the command was stopped by its
	// timeout (TimedOut) or by Cancel (Cancelled). When ctx ends the command
	// is killed and Exec returns an error for which errors.Is(err,
	// context.Canceled) (or context.DeadlineExceeded) holds.
	//
	// Errors: sdk.ErrNotFound for an unknown workspace, sdk.ErrInvalidArgument
	// naming the field for a bad request (see ExecRequest.Validate),
	// sdk.ErrAlreadyExists when an Exec with the same ExecID is running.
	Exec(ctx context.Context, req *ExecRequest, out func(stream string, data []byte) error) (*ExecResult, error)
	// Cancel stops a running Exec and its whole process tree; that Exec
	// returns a result with Cancelled set. Cancelling an Exec that is not
	// running (it ended, or has not started yet) is not an error: an Exec
	// that starts later with that ID is cancelled before it runs.
	// sdk.ErrNotFound for an unknown workspace.
	Cancel(ctx context.Context, workspaceID, execID string) error
	// Teardown stops everything the workspace runs and removes it. Later
	// calls with its ID return sdk.ErrNotFound.
	Teardown(ctx context.Context, workspaceID string) error
}

// SetupRequest asks for a workspace for one job.
type SetupRequest struct {
	// Options are the engine options of the pipeline (image, ...), as
	// described by the engine type's ParamsSchema.
	Options map[string]any
	// Namespace, Pipeline, Run and Job say which job the workspace is for.
	Namespace string
	Pipeline  string
	Run       string
	Job       string
}

// Workspace is a prepared workspace.
type Workspace struct {
	// ID is the handle the other methods take.
	ID string
	// Workdir is the workspace's directory as commands see it. Commands run
	// in it unless ExecRequest.Workdir says otherwise.
	Workdir string
}

// File is a file copied into the workspace before a command or read back
// after it.
type File struct {
	// Path is relative to the workspace, in slash form, and stays inside it.
	Path    string
	Content []byte
	// Mode holds the permission bits; zero means 0644.
	Mode fs.FileMode
}

// ExecRequest is one command to run in a workspace.
type ExecRequest struct {
	WorkspaceID string
	// ExecID is unique per Exec in the workspace and is what Cancel takes.
	// It may be empty when the caller never cancels by ID.
	ExecID string
	// Shell and Script: the command runs as [Shell..., Script]. An empty
	// Shell means the engine's default (["sh", "-e", "-c"] for local).
	Shell  []string
	Script string
	// Command is an argv, run instead of a script. Exactly one of Script
	// and Command is set.
	Command []string
	// Env is the command's whole environment, apart from the minimal
	// variables an engine adds (such as PATH and HOME). The environment of
	// the engine's own process never leaks in.
	Env map[string]string
	// Workdir is relative to the workspace; empty means the workspace.
	Workdir string
	// Image is the container image to run in, for engines that have them.
	Image string
	// FilesIn are written into the workspace before the command starts.
	FilesIn []File
	// FilesOut are paths relative to the workspace read back after the
	// command ends. Paths that are not regular files then are left out of
	// the result.
	FilesOut []string
	// Timeout stops the command (its whole process tree) when it runs
	// longer; zero means no timeout.
	Timeout time.Duration
}

// ExecResult is how a command ended.
type ExecResult struct {
	// ExitCode is the command's exit status; a command ended by a signal
	// reports 128 plus the signal's number, as shells do.
	ExitCode int
	// TimedOut is set when the command was stopped by its timeout.
	TimedOut bool
	// Cancelled is set when the command was stopped by Cancel.
	Cancelled bool
	// FilesOut are the requested files that existed when the command ended.
	FilesOut []File
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Engine
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's engine service, for sdk.Serve.
func Service(impl Engine) sdk.Service {
	return sdk.Service{Category: sdk.CategoryEngine, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the engine service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	enginev1.RegisterEngineServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns an Engine that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
