package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/marked"
)

// execMarker is the environment variable that marks every process of one
// command run in the job's container: the command, and whatever it starts
// (children inherit the environment, daemonized or not). Stopping the
// command, and cleaning up after it, is signalling the processes that
// carry its marker, the way stopping a command's own container stops all
// it started.
const execMarker = "PALVELLA_EXEC_MARK"

// wrapper runs the command ("$@") in the job's container, then kills what
// it left running (its background children: nothing of one step survives
// into the next), and exits with the command's status. The marker's value
// is in the environment of every process the command started.
var wrapper = `"$@"
code=$?
` + marked.Sweep("9", "$"+execMarker) + `
exit $code`

// killer signals ($1) every process whose environment carries the marker
// ($2); it runs as root so it may read and signal any of them.
var killer = marked.Sweep("$1", "$2") + `
exit 0`

// execInJob runs one command of the job's image in the job's container, as
// an exec: no container is created or started for it.
func (p *Plugin) execInJob(ctx context.Context, ws *workspace, holder string, req *engine.ExecRequest, out func(string, []byte) error) (*engine.ExecResult, error) {
	argv, cmdEnv, workdir, err := ws.command(req)
	if err != nil {
		return nil, err
	}
	c := ws.d.c
	if tarball := filesInTar(req); tarball != nil {
		if _, err := c.CopyToContainer(ctx, holder, client.CopyToContainerOptions{DestinationPath: ws.workdir, Content: tarball, CopyUIDGID: ws.params.user != ""}); err != nil {
			return nil, ctxOr(ctx, fmt.Errorf("docker engine: copy files into the workspace: %w", err))
		}
	}
	mark := randomID(24)
	env := append(envList(cmdEnv), execMarker+"="+mark)
	ex, err := c.ExecCreate(ctx, holder, client.ExecCreateOptions{
		Cmd: append([]string{"sh", "-c", wrapper, "sh"}, argv...), Env: env, WorkingDir: workdir, User: ws.params.user,
		AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("docker engine: create the command: %w", err))
	}
	r := &run{ws: ws, id: holder, mark: execMarker + "=" + mark, exec: ex.ID}

	unregister, cancelled, err := ws.register(req, r)
	if cancelled != nil || err != nil {
		return cancelled, err
	}
	defer unregister()

	att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		if ctx.Err() != nil {
			// The daemon may have started the command before the call
			// gave up on it: its processes are stopped all the same.
			r.stop(stoppedByContext)
		}
		return nil, ctxOr(ctx, fmt.Errorf("docker engine: start the command: %w", err))
	}
	defer att.Close()
	if err := r.follow(ctx, req.Timeout, att.Reader, att.Close, out); err != nil {
		return nil, err
	}
	code, err := r.exitCode(ctx)
	if err != nil {
		return nil, ctxOr(ctx, err)
	}
	res := r.result(code)
	if len(req.FilesOut) > 0 {
		files, err := ws.filesOut(ctx, holder, req.FilesOut)
		if err != nil {
			return nil, ctxOr(ctx, err)
		}
		res.FilesOut = files
	}
	return res, nil
}

// exitCode waits for the exec to be over (its output has ended) and
// returns its exit code.
func (r *run) exitCode(ctx context.Context) (int64, error) {
	for {
		ins, err := r.ws.d.c.ExecInspect(ctx, r.exec, client.ExecInspectOptions{})
		if err != nil {
			return 0, fmt.Errorf("docker engine: wait for the command: %w", err)
		}
		if !ins.Running {
			return int64(ins.ExitCode), nil
		}
		select {
		case <-ctx.Done():
			r.stop(stoppedByContext)
			return 0, fmt.Errorf("docker engine: exec: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// signalExec stops a command run in the job's container: SIGTERM to every
// process with its marker, then, if it has not ended within the grace
// period, SIGKILL.
func (r *run) signalExec(ctx context.Context) {
	r.signalMarked(ctx, "TERM")
	if r.ended != nil {
		// The job's first command: its end is seen on its output.
		t := time.NewTimer(r.ws.grace)
		select {
		case <-r.ended:
		case <-t.C:
		}
		t.Stop()
	} else {
		for deadline := time.Now().Add(r.ws.grace); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ins, err := r.ws.d.c.ExecInspect(ctx, r.exec, client.ExecInspectOptions{})
			if err != nil || !ins.Running {
				break
			}
		}
	}
	// What is left (a child that ignored SIGTERM, or the command's
	// children after the wrapper was stopped) is killed.
	r.signalMarked(ctx, "KILL")
}

// signalMarked sends sig to every process of the command, from a root exec
// in the job's container.
func (r *run) signalMarked(ctx context.Context, sig string) {
	c := r.ws.d.c
	ex, err := c.ExecCreate(ctx, r.id, client.ExecCreateOptions{Cmd: []string{"sh", "-c", killer, "sh", sig, r.mark}, User: "0", AttachStdout: true, AttachStderr: true})
	if err == nil {
		var att client.ExecAttachResult
		if att, err = c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{}); err == nil {
			_, err = drain(att.Reader)
			att.Close()
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		r.ws.log.Warn("signal a command's processes", "container", r.id, "signal", sig, "error", err)
	}
}
