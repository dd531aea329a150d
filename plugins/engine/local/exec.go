package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// maxFilesOut bounds what Exec reads back, so the result fits in one gRPC
// message (4 MiB by default). Larger artifacts belong in storage.
const maxFilesOut = 3 << 20

// chunkSize is the most output handed to the output function at once.
const chunkSize = 32 << 10

// Why a command was stopped before it exited on its own.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedByTimeout
	stoppedByCancel
	stoppedByContext
	stoppedByOutput
)

// Exec runs one command in a workspace.
func (p *Plugin) Exec(ctx context.Context, req *engine.ExecRequest, out func(stream string, data []byte) error) (*engine.ExecResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec in workspace %q: %w", req.WorkspaceID, err)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Image != "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "image", "the local engine runs commands on the host and cannot use an image; choose a container engine")
	}
	if out == nil {
		out = func(string, []byte) error { return nil }
	}
	cfg := p.config()
	ws, r, err := p.beginRun(req.WorkspaceID, req.ExecID)
	if err != nil {
		return nil, err
	}
	if r == nil { // cancelled before it started
		return &engine.ExecResult{ExitCode: 128 + int(syscall.SIGTERM), Cancelled: true}, nil
	}
	defer p.endRun(ws, req.ExecID, r)

	root, err := os.OpenRoot(ws.work)
	if err != nil {
		return nil, fmt.Errorf("exec in workspace %q: open workspace: %w", ws.id, err)
	}
	defer root.Close()
	dir, err := prepare(root, req, cfg.jobUID, cfg.jobGID)
	if err != nil {
		return nil, fmt.Errorf("exec in workspace %q: %w", ws.id, err)
	}

	env := commandEnv(ws, req.Env, cfg.jobUID >= 0)
	argv := req.Command
	if len(argv) == 0 {
		shell := req.Shell
		if len(shell) == 0 {
			shell = ws.shell
		}
		if len(shell) == 0 {
			shell = cfg.shell
		}
		argv = append(append([]string(nil), shell...), req.Script)
	}
	res, err := p.runCommand(ctx, cfg, ws, r, req.Timeout, filepath.Join(ws.work, dir), argv, env, out)
	if err != nil {
		return nil, fmt.Errorf("exec in workspace %q: %w", ws.id, err)
	}
	if res.FilesOut, err = readFilesOut(root, req.FilesOut); err != nil {
		return nil, fmt.Errorf("exec in workspace %q: %w", ws.id, err)
	}
	return res, nil
}

// beginRun registers an Exec in its workspace. It returns a nil run when
// the Exec was cancelled before it started.
func (p *Plugin) beginRun(workspaceID, execID string) (*workspace, *run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws, ok := p.workspaces[workspaceID]
	if !ok {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	if execID != "" {
		if ws.cancelled[execID] {
			delete(ws.cancelled, execID)
			return ws, nil, nil
		}
		if _, busy := ws.running[execID]; busy {
			return nil, nil, sdk.Errorf(sdk.ErrAlreadyExists, "exec_id", "an exec %q is already running in workspace %q", execID, workspaceID)
		}
	}
	r := newRun()
	if execID != "" {
		ws.running[execID] = r
	}
	ws.all[r] = struct{}{}
	return ws, r, nil
}

func (p *Plugin) endRun(ws *workspace, execID string, r *run) {
	p.mu.Lock()
	if execID != "" && ws.running[execID] == r {
		delete(ws.running, execID)
	}
	delete(ws.all, r)
	p.mu.Unlock()
	close(r.done)
}

// prepare writes the files in and creates the working directory, all
// inside root, and returns the working directory relative to it. When uid
// is not -1, what it writes is given to uid/gid, the commands' user.
func prepare(root *os.Root, req *engine.ExecRequest, uid, gid int) (string, error) {
	// chown gives name and the directories on the way to it to the
	// commands' user.
	chown := func(name string) error {
		if uid < 0 {
			return nil
		}
		parts := strings.Split(name, string(filepath.Separator))
		for i := range parts {
			if err := root.Lchown(filepath.Join(parts[:i+1]...), uid, gid); err != nil {
				return err
			}
		}
		return nil
	}
	for i, f := range req.FilesIn {
		name, err := engine.CleanPath(fmt.Sprintf("files_in[%d].path", i), f.Path, false)
		if err != nil {
			return "", err
		}
		if d := filepath.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return "", fmt.Errorf("write file in %q: %w", f.Path, err)
			}
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if err := root.WriteFile(name, f.Content, mode); err != nil {
			return "", fmt.Errorf("write file in %q: %w", f.Path, err)
		}
		// WriteFile keeps the mode of a file that already existed.
		if err := root.Chmod(name, mode); err != nil {
			return "", fmt.Errorf("write file in %q: %w", f.Path, err)
		}
		if err := chown(name); err != nil {
			return "", fmt.Errorf("write file in %q: %w", f.Path, err)
		}
	}
	dir := "."
	if req.Workdir != "" {
		var err error
		if dir, err = engine.CleanPath("workdir", req.Workdir, true); err != nil {
			return "", err
		}
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create workdir %q: %w", req.Workdir, err)
		}
		if err := chown(dir); err != nil {
			return "", fmt.Errorf("create workdir %q: %w", req.Workdir, err)
		}
	}
	return dir, nil
}

// commandEnv is the whole environment of a command: a minimal base the
// request's variables override. A command that runs as another user than
// the engine's gets its workspace as HOME, not the engine's home.
func commandEnv(ws *workspace, given map[string]string, otherUser bool) []string {
	base := map[string]string{"PATH": defaultPath, "HOME": ws.dir, "TMPDIR": ws.tmp}
	if v := os.Getenv("PATH"); v != "" {
		base["PATH"] = v
	}
	if v := os.Getenv("HOME"); v != "" && !otherUser {
		base["HOME"] = v
	}
	for k, v := range ws.environ {
		base[k] = v
	}
	for k, v := range given {
		base[k] = v
	}
	env := make([]string, 0, len(base))
	for k, v := range base {
		env = append(env, k+"="+v)
	}
	return env
}

// envValue returns a variable of env.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath finds a program as the command's own PATH would, not the
// plugin's.
func lookPath(name, dir string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if filepath.IsAbs(name) {
			return name, nil
		}
		return filepath.Join(dir, name), nil
	}
	for _, d := range filepath.SplitList(envValue(env, "PATH")) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		candidate := filepath.Join(d, name)
		if fi, err := os.Stat(candidate); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", exec.ErrNotFound
}

// runCommand runs argv contained (its own cgroup, or its own process
// group) and streams its output to out until every process it started is
// gone.
func (p *Plugin) runCommand(ctx context.Context, cfg config, ws *workspace, r *run, timeout time.Duration, dir string, argv, env []string, out func(string, []byte) error) (*engine.ExecResult, error) {
	grace := cfg.grace
	var (
		outMu  sync.Mutex
		outErr error
	)
	outFailed := make(chan struct{})
	emit := func(stream string, data []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		if outErr != nil {
			return
		}
		if err := out(stream, data); err != nil {
			outErr = err
			close(outFailed)
		}
	}

	path, err := lookPath(argv[0], dir, env)
	if err != nil {
		// As a shell would: the command ran and did not find its program.
		emit(engine.Stderr, fmt.Appendf(nil, "%s: %s: command not found\n", Name, argv[0]))
		return &engine.ExecResult{ExitCode: 127}, outErrOrNil(&outMu, &outErr)
	}

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path: path, Args: argv, Env: env, Dir: dir,
		Stdout: stdoutW, Stderr: stderrW,
	}
	c, err := newContainer(cmd, cfg.cgroup)
	if err != nil {
		for _, f := range []*os.File{stdoutR, stdoutW, stderrR, stderrW} {
			f.Close()
		}
		return nil, fmt.Errorf("contain the command: %w", err)
	}
	if cfg.jobUID >= 0 {
		// The fork switches user; Go sets the parent-death signal after
		// the switch (which would clear it).
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(cfg.jobUID), Gid: uint32(cfg.jobGID), Groups: []uint32{uint32(cfg.jobGID)}}
	}
	// With Landlock, the command is forked from a thread of the engine
	// that entered the sandbox first, and inherits it (startSandboxed).
	host.rmu.Lock()
	var startErr error
	if cfg.landlock {
		var release func()
		if release, startErr = startSandboxed(cmd, sandboxFor(cfg.deny, cfg.root, ws.dir)); startErr == nil {
			// Exec returns once the command has exited (or been killed).
			defer release()
		}
	} else {
		startErr = cmd.Start()
	}
	if startErr == nil {
		c.started(cmd.Process.Pid)
	}
	host.rmu.Unlock()
	// The children hold the write ends now; ours must go for EOF to come.
	stdoutW.Close()
	stderrW.Close()
	if startErr != nil {
		stdoutR.Close()
		stderrR.Close()
		_ = c.release()
		code := 126
		if errors.Is(startErr, fs.ErrNotExist) {
			code = 127
		}
		emit(engine.Stderr, fmt.Appendf(nil, "%s: %s: %v\n", Name, argv[0], startErr))
		return &engine.ExecResult{ExitCode: code}, outErrOrNil(&outMu, &outErr)
	}
	// The record names what to kill should the engine die: the engine's
	// cgroup, written at Setup, holds this command already; a process
	// group is written now and struck off when it ends.
	if x := c.record(); ws.cgroup == "" || !strings.HasPrefix(x.Cgroup, ws.cgroup+"/") {
		p.mu.Lock()
		ws.execs[r] = x
		recErr := ws.saveRecord()
		p.mu.Unlock()
		if recErr != nil {
			emit(engine.Stderr, fmt.Appendf(nil, "%s: %v\n", Name, recErr))
		}
		defer func() {
			p.mu.Lock()
			delete(ws.execs, r)
			_ = ws.saveRecord() // Teardown removes it anyway
			p.mu.Unlock()
		}()
	}

	var readers sync.WaitGroup
	for _, s := range []struct {
		name string
		f    *os.File
	}{{engine.Stdout, stdoutR}, {engine.Stderr, stderrR}} {
		readers.Go(func() { pump(s.f, s.name, emit) })
	}
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	reason := notStopped
	exited := false
	select {
	case <-waited:
		exited = true
	case <-timer:
		reason = stoppedByTimeout
	case <-r.stopped:
		reason = stoppedByCancel
	case <-ctx.Done():
		reason = stoppedByContext
	case <-outFailed:
		reason = stoppedByOutput
	}

	// Stop what is left: either the command is being stopped, or it exited
	// and left processes behind. SIGTERM, then SIGKILL once the grace is
	// over or at once when everything exited.
	if reason != notStopped || c.alive() {
		c.signal(syscall.SIGTERM)
		deadline := time.NewTimer(grace)
		poll := time.NewTicker(20 * time.Millisecond)
		wait := waited
		done := readersDone
	graceLoop:
		for !exited || done != nil || c.alive() {
			select {
			case <-wait:
				exited, wait = true, nil
			case <-done:
				done = nil
			case <-poll.C:
			case <-deadline.C:
				break graceLoop
			}
		}
		poll.Stop()
		deadline.Stop()
		c.kill()
	}
	if !exited {
		<-waited
	}
	// Waits until the processes are gone (cgroup), or kills those that
	// left the process group and were re-parented to the engine.
	if err := c.release(); err != nil {
		emit(engine.Stderr, fmt.Appendf(nil, "%s: %v\n", Name, err))
	}
	// A process that escaped may still hold the pipes: give the readers a
	// grace, then cut them off.
	select {
	case <-readersDone:
	case <-time.After(grace + 100*time.Millisecond):
		stdoutR.Close()
		stderrR.Close()
		<-readersDone
	}
	stdoutR.Close()
	stderrR.Close()

	switch reason {
	case stoppedByContext:
		return nil, fmt.Errorf("command stopped: %w", ctx.Err())
	case stoppedByOutput:
		return nil, fmt.Errorf("handle output: %w", outErr)
	}
	if err := outErrOrNil(&outMu, &outErr); err != nil {
		return nil, err
	}
	return &engine.ExecResult{
		ExitCode:  exitCode(cmd.ProcessState),
		TimedOut:  reason == stoppedByTimeout,
		Cancelled: reason == stoppedByCancel,
	}, nil
}

func outErrOrNil(mu *sync.Mutex, err *error) error {
	mu.Lock()
	defer mu.Unlock()
	if *err != nil {
		return fmt.Errorf("handle output: %w", *err)
	}
	return nil
}

// pump hands what f yields to emit, chunk by chunk, as it arrives.
func pump(f *os.File, stream string, emit func(string, []byte)) {
	buf := make([]byte, chunkSize)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			emit(stream, append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			// io.EOF when every writer is gone; os.ErrClosed when cut off.
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				emit(engine.Stderr, fmt.Appendf(nil, "%s: reading %s: %v\n", Name, stream, err))
			}
			return
		}
	}
}

// exitCode is the command's exit status, or 128 plus the signal that ended
// it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1 // its status was lost: Wait failed
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// readFilesOut reads the requested files that are regular files inside
// root.
func readFilesOut(root *os.Root, paths []string) ([]engine.File, error) {
	var out []engine.File
	total := 0
	for i, p := range paths {
		field := fmt.Sprintf("files_out[%d]", i)
		name, err := engine.CleanPath(field, p, false)
		if err != nil {
			return nil, err
		}
		f, err := root.Open(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			// Such as a symbolic link that leads out of the workspace.
			return nil, sdk.Errorf(sdk.ErrFailedPrecondition, field, "cannot read %q: %v", p, err)
		}
		content, mode, ok, err := readRegular(f, maxFilesOut-total)
		f.Close()
		if err != nil {
			if errors.Is(err, errTooLarge) {
				return nil, sdk.Errorf(sdk.ErrResourceExhausted, field, "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
			}
			return nil, fmt.Errorf("read file out %q: %w", p, err)
		}
		if !ok {
			continue
		}
		total += len(content)
		out = append(out, engine.File{Path: p, Content: content, Mode: mode})
	}
	return out, nil
}

var errTooLarge = errors.New("too large")

// readRegular reads f if it is a regular file of at most limit bytes.
func readRegular(f *os.File, limit int) ([]byte, fs.FileMode, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, false, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, false, nil
	}
	if fi.Size() > int64(limit) {
		return nil, 0, false, errTooLarge
	}
	content, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, 0, false, err
	}
	if len(content) > limit {
		return nil, 0, false, errTooLarge
	}
	return content, fi.Mode().Perm(), true, nil
}
