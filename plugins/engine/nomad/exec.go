package nomad

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/marked"
)

// maxFilesOut bounds what Exec reads back, so the result fits in one gRPC
// message (as on the other engines).
const maxFilesOut = 3 << 20

// defaultPath is the PATH of a command whose task gives none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// wrapper runs one command in the allocation: in its workdir, with only
// the variables it is given (env -i: the task's own environment, such as
// the Nomad agent's on raw_exec, never leaks in) plus the command's marker
// (PALVELLA_EXEC=<workspace>-<random>), which every process it starts
// inherits. When the command ends, whatever it left running is killed:
// nothing of one step survives into the next.
//
// Arguments: workdir, marker assignment, then the command's argv. The
// command's variables come on standard input as `export NAME='value'`
// lines, read by shell builtins and handed on through a pipe, so that no
// value (a credential, often) is ever in a command line, which any user
// of the host can read, or in the exec request, which Nomad may log.
var wrapper = `d=$1; m=$2; shift 2
vars=$(cat)
mkdir -p -- "$d" && cd -- "$d" || exit 127
printf '%s\n' "$vars" | env -i "PATH=${PATH:-` + defaultPath + `}" "HOME=${HOME:-/}" "$m" sh -c 'eval "$(cat)" && exec "$@" </dev/null' palvella-env "$@"
rc=$?
` + killLeftovers + `
exit $rc`

// killLeftovers sends SIGKILL to every process whose environment holds
// the marker $m.
var killLeftovers = marked.Sweep("KILL", "$m")

// killScript stops every process whose environment holds the marker $1
// (matched as marked.Sweep says: busybox's grep -F misses it):
// SIGTERM, then SIGKILL to those still there after $2 tenths of a second.
var killScript = `m=$1; n=$2
pids() { for f in $(grep -l -- "$m" /proc/[0-9]*/environ 2>/dev/null); do p=${f#/proc/}; echo "${p%/environ}"; done; }
l=$(pids); [ -n "$l" ] || exit 0
kill -TERM $l 2>/dev/null
i=0
while [ "$i" -lt "$n" ]; do
  sleep 0.1 2>/dev/null || sleep 1
  l=$(pids); [ -n "$l" ] || exit 0
  i=$((i+1))
done
` + killLeftovers

// Why a command was stopped.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedByTimeout
	stoppedByCancel
	stoppedByContext
	stoppedByOutput
	stoppedByTeardown
)

// run is one command while it runs.
type run struct {
	ws     *workspace
	marker string

	mu     sync.Mutex
	reason stopReason
	once   sync.Once
}

// stop records why the command stops (the first reason wins) and stops
// every process it started; it returns once they are gone.
func (r *run) stop(reason stopReason) {
	r.mu.Lock()
	if r.reason == notStopped {
		r.reason = reason
	}
	r.mu.Unlock()
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.ws.grace+30*time.Second)
		defer cancel()
		if err := r.ws.kill(ctx, r.marker); err != nil {
			sdk.Logger(Name).Warn("stop a command", "workspace", r.ws.id, "error", err)
		}
	})
}

func (r *run) stoppedBy() stopReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// kill stops the processes of the allocation whose environment holds
// marker: SIGTERM, then SIGKILL after the grace period.
func (ws *workspace) kill(ctx context.Context, marker string) error {
	return killIn(ctx, ws.cl.c, ws.alloc, marker, ws.grace)
}

// killIn stops the processes of alloc whose environment holds marker,
// through an exec in the allocation's task.
func killIn(ctx context.Context, c *api.Client, alloc *api.Allocation, marker string, grace time.Duration) error {
	tenths := int(grace / (100 * time.Millisecond))
	var errOut strings.Builder
	code, err := c.Allocations().Exec(ctx, alloc, taskName, false,
		[]string{"sh", "-c", killScript, "palvella-kill", marker, strconv.Itoa(tenths)},
		strings.NewReader(""), discardWriter{}, &errOut, nil, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("signal the command's processes: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("signal the command's processes: exit %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	return nil
}

// Exec runs one command in the job's allocation, in the workspace.
func (p *Plugin) Exec(ctx context.Context, req *engine.ExecRequest, out func(stream string, data []byte) error) (*engine.ExecResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := p.workspace(req.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nomad engine: exec: %w", err)
	}
	if err := checkEnvNames(req.Env); err != nil {
		return nil, err
	}
	if req.Image != "" && !(ws.params.driver == driverDocker && req.Image == ws.params.image) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "image", "the nomad engine runs every command of a job in the job's one task; a command cannot choose its own image (%q)", req.Image)
	}
	if out == nil {
		out = func(string, []byte) error { return nil }
	}
	ws.mu.Lock()
	if ws.gone {
		ws.mu.Unlock()
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", req.WorkspaceID)
	}
	if req.ExecID != "" {
		if ws.running[req.ExecID] != nil {
			ws.mu.Unlock()
			return nil, sdk.Errorf(sdk.ErrAlreadyExists, "exec_id", "an exec %q is running in this workspace", req.ExecID)
		}
		if ws.canceled[req.ExecID] {
			delete(ws.canceled, req.ExecID)
			ws.mu.Unlock()
			return &engine.ExecResult{ExitCode: 143, Cancelled: true}, nil
		}
	}
	ws.mu.Unlock()

	workdir := ws.workdir
	if req.Workdir != "" {
		clean, err := engine.CleanPath("workdir", req.Workdir, true)
		if err != nil {
			return nil, err
		}
		workdir = path.Join(ws.workdir, clean)
	}
	if err := ws.filesIn(ctx, req.FilesIn); err != nil {
		return nil, err
	}

	r := &run{ws: ws, marker: "PALVELLA_EXEC=" + ws.id + "-" + randomID(16)}
	ws.mu.Lock()
	if ws.gone {
		ws.mu.Unlock()
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", req.WorkspaceID)
	}
	if req.ExecID != "" {
		if ws.canceled[req.ExecID] {
			delete(ws.canceled, req.ExecID)
			ws.mu.Unlock()
			return &engine.ExecResult{ExitCode: 143, Cancelled: true}, nil
		}
		ws.running[req.ExecID] = r
		defer func() {
			ws.mu.Lock()
			delete(ws.running, req.ExecID)
			ws.mu.Unlock()
		}()
	}
	ws.mu.Unlock()

	// The exec's own context ends only when this function is done with it:
	// the caller going away first stops the command's processes.
	ectx, ecancel := context.WithCancel(context.WithoutCancel(ctx))
	defer ecancel()
	outErr := make(chan error, 1)
	var outMu sync.Mutex
	broken := false
	stdout := &streamWriter{stream: engine.Stdout, out: out, failed: outErr, mu: &outMu, broken: &broken}
	stderr := &streamWriter{stream: engine.Stderr, out: out, failed: outErr, mu: &outMu, broken: &broken}
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := ws.cl.c.Allocations().Exec(ectx, ws.alloc, taskName, false, ws.argv(req, workdir, r.marker),
			strings.NewReader(ws.envScript(req)), stdout, stderr, nil, (&api.QueryOptions{}).WithContext(ectx))
		done <- outcome{code, err}
	}()

	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var res outcome
	for waiting := true; waiting; {
		select {
		case res = <-done:
			waiting = false
		case <-timeout:
			timeout = nil
			go r.stop(stoppedByTimeout)
		case err := <-outErr:
			r.stop(stoppedByOutput)
			ecancel()
			<-done
			return nil, fmt.Errorf("nomad engine: exec: output: %w", err)
		case <-ctx.Done():
			r.stop(stoppedByContext)
			ecancel()
			<-done
			return nil, fmt.Errorf("nomad engine: exec: %w", ctx.Err())
		}
	}
	select {
	case err := <-outErr:
		return nil, fmt.Errorf("nomad engine: exec: output: %w", err)
	default:
	}
	if res.err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nomad engine: exec: %w", ctx.Err())
		}
		return nil, fmt.Errorf("nomad engine: exec in allocation %s of job %s: %w", ws.alloc.ID, ws.jobID, res.err)
	}
	result := &engine.ExecResult{ExitCode: res.code}
	switch r.stoppedBy() {
	case stoppedByTimeout:
		result.TimedOut = true
	case stoppedByCancel, stoppedByTeardown:
		result.Cancelled = true
	}
	if (result.TimedOut || result.Cancelled) && result.ExitCode <= 0 {
		result.ExitCode = 143
	}
	if len(req.FilesOut) > 0 {
		files, err := ws.filesOut(ctx, req.FilesOut)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("nomad engine: exec: %w", ctx.Err())
			}
			return nil, err
		}
		result.FilesOut = files
	}
	return result, nil
}

// argv is the exec's command: the wrapper with the command's workdir,
// marker and argv.
func (ws *workspace) argv(req *engine.ExecRequest, workdir, marker string) []string {
	argv := []string{"sh", "-c", wrapper, "palvella-exec", workdir, marker}
	if len(req.Command) > 0 {
		return append(argv, req.Command...)
	}
	shell := req.Shell
	if len(shell) == 0 {
		shell = ws.params.shell
	}
	argv = append(argv, shell...)
	return append(argv, req.Script)
}

// envScript is the command's variables as the wrapper reads them:
// `export NAME='value'` lines. Names are shell identifiers (checked by
// checkEnvNames).
func (ws *workspace) envScript(req *engine.ExecRequest) string {
	env := map[string]string{}
	maps.Copy(env, ws.params.environ)
	maps.Copy(env, req.Env)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString("export " + k + "='" + strings.ReplaceAll(env[k], "'", `'\''`) + "'\n")
	}
	return b.String()
}

// checkEnvNames refuses variable names a shell cannot export.
func checkEnvNames(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !isIdentifier(k) {
			return sdk.Errorf(sdk.ErrInvalidArgument, "env", "variable name %q: the nomad engine sets variables through a shell; a name is letters, digits and _, not starting with a digit", k)
		}
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// streamWriter hands what the exec stream writes to the output function.
// The API writes from one goroutine; the first error of out is reported
// on failed, and later output (of either stream) is dropped.
type streamWriter struct {
	stream string
	out    func(string, []byte) error
	failed chan error
	mu     *sync.Mutex
	broken *bool
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *w.broken {
		return len(b), nil
	}
	if err := w.out(w.stream, slices.Clone(b)); err != nil {
		*w.broken = true
		select {
		case w.failed <- err:
		default:
		}
	}
	return len(b), nil
}

// Cancel stops a running command; one that has not started yet is
// cancelled before it runs.
func (p *Plugin) Cancel(ctx context.Context, workspaceID, execID string) error {
	ws, err := p.workspace(workspaceID)
	if err != nil {
		return err
	}
	ws.mu.Lock()
	r := ws.running[execID]
	if r == nil && execID != "" {
		ws.canceled[execID] = true
	}
	ws.mu.Unlock()
	if r != nil {
		r.stop(stoppedByCancel)
	}
	return nil
}

// filesIn writes the request's files into the workspace, one exec each
// with the content on its standard input: the allocation filesystem API
// only reads.
func (ws *workspace) filesIn(ctx context.Context, files []engine.File) error {
	for i, f := range files {
		clean, err := engine.CleanPath(fmt.Sprintf("files_in[%d].path", i), f.Path, false)
		if err != nil {
			return err
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		target := path.Join(ws.workdir, clean)
		var errOut strings.Builder
		code, err := ws.cl.c.Allocations().Exec(ctx, ws.alloc, taskName, false,
			[]string{"sh", "-c", `f=$1; mkdir -p -- "${f%/*}" && cat > "$f" && chmod "$2" "$f"`, "palvella-file", target, fmt.Sprintf("%o", mode)},
			strings.NewReader(string(f.Content)), discardWriter{}, &errOut, nil, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("nomad engine: exec: %w", ctx.Err())
			}
			return fmt.Errorf("nomad engine: write %s into the workspace: %w", clean, err)
		}
		if code != 0 {
			return fmt.Errorf("nomad engine: write %s into the workspace: exit %d: %s", clean, code, strings.TrimSpace(errOut.String()))
		}
	}
	return nil
}

// filesOut reads files of the workspace back through the allocation
// filesystem API. What is not a regular file (absent, a directory) is
// left out.
func (ws *workspace) filesOut(ctx context.Context, paths []string) ([]engine.File, error) {
	var files []engine.File
	total := 0
	fs := ws.cl.c.AllocFS()
	for i, p := range paths {
		clean, err := engine.CleanPath(fmt.Sprintf("files_out[%d]", i), p, false)
		if err != nil {
			return nil, err
		}
		name := path.Join(ws.fsDir, clean)
		st, _, err := fs.Stat(ws.alloc, name, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("nomad engine: read %s from the workspace: %w", clean, err)
		}
		if st.IsDir || !strings.HasPrefix(st.FileMode, "-") {
			continue
		}
		if st.Size > int64(maxFilesOut-total) {
			return nil, sdk.Errorf(sdk.ErrResourceExhausted, fmt.Sprintf("files_out[%d]", i), "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
		}
		rc, err := fs.Cat(ws.alloc, name, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("nomad engine: read %s from the workspace: %w", clean, err)
		}
		content, err := io.ReadAll(io.LimitReader(rc, int64(maxFilesOut-total)+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("nomad engine: read %s from the workspace: %w", clean, err)
		}
		if len(content) > maxFilesOut-total {
			return nil, sdk.Errorf(sdk.ErrResourceExhausted, fmt.Sprintf("files_out[%d]", i), "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
		}
		total += len(content)
		files = append(files, engine.File{Path: clean, Content: content, Mode: modeOf(st.FileMode)})
	}
	return files, nil
}

// isNotFound tells the filesystem API's "no such file" (404) from other
// errors.
func isNotFound(err error) bool {
	var ue api.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == 404
}

// modeOf reads the permission bits of a mode as Go prints it
// ("-rwxr-xr-x").
func modeOf(s string) (m iofs.FileMode) {
	if len(s) < 10 {
		return 0o644
	}
	perm := s[len(s)-9:]
	for i, c := range perm {
		if c != '-' {
			m |= 1 << (8 - i)
		}
	}
	return m
}
