package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync/atomic"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// execution is a job being executed in this process: what the host
// services need to serve an action plugin's calls for it.
type execution struct {
	ref sdk.ExecutionRef
	// id is the job's execution ID (JobStatus.Execution).
	id        string
	engine    engine.Engine
	workspace *engine.Workspace
	// env is the job's environment (pipeline env, job env, PALVELLA_*),
	// under the action's own.
	env   map[string]string
	scope storage.Scope
	// interrupted says why the job was stopped from the outside (its
	// engine or a plugin crashed), once it was.
	interrupted atomic.Pointer[string]
	// pluginDown is set when a plugin the job needs did not start: the
	// job fails without using a retry, which could not help.
	pluginDown atomic.Bool
	// first: the job never ran before this execution (its transitions
	// hold one start), so its actions have no earlier logs.
	first bool
	// premarked is the action recorded running with the job's start, and
	// premarkedRan says it was reached (the job's actions run one after
	// the other, on one goroutine).
	premarked    string
	premarkedRan bool
}

// interrupt records that the job was stopped from the outside.
func (e *execution) interrupt(why string) { e.interrupted.CompareAndSwap(nil, &why) }

// interruptedBy says why the job was stopped from the outside, or "".
func (e *execution) interruptedBy() string {
	if e == nil {
		return ""
	}
	if w := e.interrupted.Load(); w != nil {
		return *w
	}
	return ""
}

// executionOf returns the execution registered for ref, or nil.
func (o *Orchestrator) executionOf(ref sdk.ExecutionRef) *execution {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.execs[execKey(ref)]
}

var execSeq atomic.Int64

func execKey(ref sdk.ExecutionRef) string {
	return fmt.Sprintf("%s/%s/%s/%d", ref.Namespace, ref.Run, ref.Job, ref.Attempt)
}

func (o *Orchestrator) register(e *execution) func() {
	k := execKey(e.ref)
	o.mu.Lock()
	o.execs[k] = e
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.execs, k)
		o.mu.Unlock()
	}
}

// Host is the sdk.Host served to every plugin: the services the core
// offers back, scoped to the execution a call carries.
func (o *Orchestrator) Host() sdk.Host { return (*hostServices)(o) }

type hostServices Orchestrator

var _ sdk.Host = (*hostServices)(nil)

func (h *hostServices) execution(ctx context.Context) (*execution, error) {
	ref, ok := sdk.ExecutionFrom(ctx)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrPermissionDenied, "", "this host service is only available to a plugin serving an action")
	}
	h.mu.Lock()
	e := h.execs[execKey(ref)]
	h.mu.Unlock()
	if e == nil {
		return nil, sdk.Errorf(sdk.ErrPermissionDenied, "", "no action of run %s job %s is running here", ref.Run, ref.Job)
	}
	return e, nil
}

func (h *hostServices) Log(ctx context.Context, level sdk.LogLevel, msg string, fields map[string]string) error {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	if ref, ok := sdk.ExecutionFrom(ctx); ok {
		args = append(args, "run", ref.Run, "job", ref.Job, "action", ref.Action)
	}
	switch level {
	case sdk.LogError:
		h.log.Error(msg, args...)
	case sdk.LogWarn:
		h.log.Warn(msg, args...)
	case sdk.LogDebug, sdk.LogTrace:
		h.log.Debug(msg, args...)
	default:
		h.log.Info(msg, args...)
	}
	return nil
}

// ReadCredential is refused: plugins receive credential values only
// through the environment the pipeline gives a job, so that what a plugin
// can read is what the pipeline says.
func (h *hostServices) ReadCredential(ctx context.Context, name, key string) ([]byte, error) {
	return nil, sdk.Errorf(sdk.ErrPermissionDenied, "name", "credential %q: plugins get credentials through the job's environment ({from_credential: NAME} in env), not by reading them", name)
}

func (h *hostServices) PutObject(ctx context.Context, key string, r io.Reader) error {
	e, err := h.execution(ctx)
	if err != nil {
		return err
	}
	st, err := (*Orchestrator)(h).storage(ctx)
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, storage.ObjectRef{Scope: e.scope, Key: key}, r)
	return err
}

func (h *hostServices) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	e, err := h.execution(ctx)
	if err != nil {
		return nil, err
	}
	st, err := (*Orchestrator)(h).storage(ctx)
	if err != nil {
		return nil, err
	}
	rc, _, err := st.Get(ctx, storage.ObjectRef{Scope: e.scope, Key: key})
	return rc, err
}

func (h *hostServices) Exec(ctx context.Context, req *sdk.HostExecRequest, out func(stream string, data []byte)) (*sdk.HostExecResult, error) {
	e, err := h.execution(ctx)
	if err != nil {
		return nil, err
	}
	env := maps.Clone(e.env)
	maps.Copy(env, req.Env)
	res, err := e.engine.Exec(ctx, &engine.ExecRequest{
		WorkspaceID: e.workspace.ID,
		ExecID:      fmt.Sprintf("%s-%d", e.ref.Action, execSeq.Add(1)),
		Shell:       req.Shell, Script: req.Script, Command: req.Command,
		Env: env, Workdir: req.Workdir, FilesOut: req.FilesOut,
	}, func(stream string, data []byte) error {
		if out != nil {
			out(stream, data)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, sdk.ErrPluginStopped) && ctx.Err() == nil {
			// The engine stopped under the command: the job is
			// interrupted, not failed.
			e.interrupt("the engine stopped while a command ran: " + err.Error())
		}
		return nil, err
	}
	result := &sdk.HostExecResult{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Cancelled: res.Cancelled}
	for _, f := range res.FilesOut {
		if result.FilesOut == nil {
			result.FilesOut = map[string][]byte{}
		}
		result.FilesOut[f.Path] = f.Content
	}
	return result, nil
}
