package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// maxFilesOut bounds what Exec reads back, so the result fits in one gRPC
// message (as on the local engine).
const maxFilesOut = 3 << 20

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

// run is one command while it runs: its own container, or an exec in the
// job's container (id) whose processes carry mark.
type run struct {
	ws   *workspace
	id   string
	mark string // execMarker=VALUE, for an exec in the job's container
	exec string // the exec's ID
	// ended, for the job's first command (run by the holder's first
	// process rather than an exec), is closed when it is over, or when
	// its output is no longer read (readerGone): then no end mark can say.
	ended      chan struct{}
	readerGone func()

	mu     sync.Mutex
	reason stopReason
	once   sync.Once
}

// stop records why the command stops (the first reason wins) and stops its
// container: SIGTERM, then SIGKILL after the grace period.
func (r *run) stop(reason stopReason) {
	r.mu.Lock()
	if r.reason == notStopped {
		r.reason = reason
	}
	r.mu.Unlock()
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.ws.grace+30*time.Second)
		defer cancel()
		if r.exec != "" || r.ended != nil {
			r.signalExec(ctx)
			return
		}
		secs := int((r.ws.grace + time.Second - 1) / time.Second)
		if _, err := r.ws.d.c.ContainerStop(ctx, r.id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
			r.ws.d.c.ContainerKill(ctx, r.id, client.ContainerKillOptions{Signal: "KILL"})
		}
	})
}

// register records r as the command of req.ExecID while it runs, for
// Cancel; unregister forgets it. A command cancelled before it ran gets
// its result instead, and one of a workspace torn down an error.
func (ws *workspace) register(req *engine.ExecRequest, r *run) (unregister func(), cancelled *engine.ExecResult, err error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.gone {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", req.WorkspaceID)
	}
	if req.ExecID == "" {
		return func() {}, nil, nil
	}
	if ws.canceled[req.ExecID] {
		delete(ws.canceled, req.ExecID)
		return nil, &engine.ExecResult{ExitCode: 143, Cancelled: true}, nil
	}
	ws.running[req.ExecID] = r
	return func() {
		ws.mu.Lock()
		delete(ws.running, req.ExecID)
		ws.mu.Unlock()
	}, nil, nil
}

func (r *run) stoppedBy() stopReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Exec runs one command: an exec in the job's container for a command of
// the job's image, else a new container of its image with the workspace
// volume mounted at its workdir.
func (p *Plugin) Exec(ctx context.Context, req *engine.ExecRequest, out func(stream string, data []byte) error) (*engine.ExecResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := p.workspace(req.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("docker engine: exec: %w", err)
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
	// The image pull's progress goes to the first command that shows its
	// output: not the copies of stored files (a bare `true`).
	var pullLog []byte
	if !slices.Equal(req.Command, []string{"true"}) {
		pullLog, ws.pullLog = ws.pullLog, nil
	}
	ws.mu.Unlock()
	if len(pullLog) > 0 {
		if err := out(engine.Stderr, pullLog); err != nil {
			return nil, fmt.Errorf("docker engine: exec: output: %w", err)
		}
	}

	image := ws.params.image
	if req.Image != "" && req.Image != image {
		image = req.Image
		if err := p.ensureImage(ctx, ws.d, ws.params, image, func(line string) { out(engine.Stderr, []byte(line)) }); err != nil {
			return nil, err
		}
	}
	if image == ws.params.image {
		if res, ran, err := p.execFirst(ctx, ws, req, out); ran || err != nil {
			return res, err
		}
	}
	// A command in another image joins the holder's PID namespace: the
	// holder must run.
	holder, err := ws.ensureStarted(ctx)
	if err != nil {
		return nil, err
	}
	if holder != "" && image == ws.params.image {
		return p.execInJob(ctx, ws, holder, req, out)
	}
	cfg, hc, err := ws.containerConfig(req, image, holder)
	if err != nil {
		return nil, err
	}
	c := ws.d.c
	created, err := ws.create(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Platform: ws.platform()})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("docker engine: exec: %w", ctx.Err())
		}
		return nil, fmt.Errorf("docker engine: create the container: %w", err)
	}
	r := &run{ws: ws, id: created.ID}
	// The container goes once the command is over, in the background so
	// the result is not held up; Teardown waits for it.
	ws.removing.Add(1)
	defer func() {
		go func() {
			defer ws.removing.Done()
			rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ws.remove(rctx, created.ID); err != nil {
				p.log.Warn("remove a command's container", "container", created.ID, "error", err)
			}
		}()
	}()

	if tarball := filesInTar(req); tarball != nil {
		if _, err := c.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: ws.workdir, Content: tarball, CopyUIDGID: ws.params.user != ""}); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("docker engine: exec: %w", ctx.Err())
			}
			return nil, fmt.Errorf("docker engine: copy files into the workspace: %w", err)
		}
	}

	unregister, cancelled, err := ws.register(req, r)
	if cancelled != nil || err != nil {
		return cancelled, err
	}
	defer unregister()

	att, err := c.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("docker engine: attach to the container: %w", err))
	}
	defer att.Close()
	// The wait is registered before the start, so that no exit is missed.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	wait := c.ContainerWait(wctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})

	if _, err := c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("docker engine: exec: %w", ctx.Err())
		}
		// The program could not be started (not found, not executable):
		// the command's failure, reported as a shell would.
		if oerr := out(engine.Stderr, []byte(err.Error()+"\n")); oerr != nil {
			return nil, fmt.Errorf("docker engine: exec: output: %w", oerr)
		}
		return &engine.ExecResult{ExitCode: 127}, nil
	}

	if err := r.follow(ctx, req.Timeout, att.Reader, att.Close, out); err != nil {
		return nil, err
	}
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		return nil, ctxOr(ctx, fmt.Errorf("docker engine: wait for the container: %w", err))
	case <-ctx.Done():
		r.stop(stoppedByContext)
		return nil, fmt.Errorf("docker engine: exec: %w", ctx.Err())
	}
	res := r.result(code)
	if len(req.FilesOut) > 0 {
		files, err := ws.filesOut(ctx, created.ID, req.FilesOut)
		if err != nil {
			return nil, ctxOr(ctx, err)
		}
		res.FilesOut = files
	}
	return res, nil
}

// follow hands the command's output to out until it ends, stopping the
// command on its timeout, when ctx ends (then closing the stream) or when
// out fails. It returns out's error, or ctx's when ctx ended.
func (r *run) follow(ctx context.Context, timeout time.Duration, stream io.Reader, closeStream func(), out func(string, []byte) error) error {
	// The output is read by one goroutine, which alone calls out.
	readDone := make(chan error, 1)
	go func() { readDone <- demux(stream, out) }()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	var outErr error
	for readOpen := true; readOpen; {
		select {
		case err := <-readDone:
			readOpen = false
			if r.readerGone != nil {
				r.readerGone()
			}
			var oe outputError
			if errors.As(err, &oe) {
				outErr = oe.err
				r.stop(stoppedByOutput)
			}
		case <-timer:
			timer = nil
			go r.stop(stoppedByTimeout)
		case <-ctx.Done():
			r.stop(stoppedByContext)
			closeStream()
		}
	}
	if outErr != nil {
		return fmt.Errorf("docker engine: exec: output: %w", outErr)
	}
	if r.stoppedBy() == stoppedByContext {
		return fmt.Errorf("docker engine: exec: %w", ctx.Err())
	}
	return nil
}

// result is the command's result for its exit code and why it stopped.
func (r *run) result(code int64) *engine.ExecResult {
	res := &engine.ExecResult{ExitCode: int(code)}
	switch r.stoppedBy() {
	case stoppedByTimeout:
		res.TimedOut = true
	case stoppedByCancel, stoppedByTeardown:
		res.Cancelled = true
	}
	if res.ExitCode == 0 && (res.TimedOut || res.Cancelled) {
		res.ExitCode = 143
	}
	return res
}

func drain(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("docker engine: exec: %w", ctx.Err())
	}
	return err
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

// command is what a command runs: its argv, its own environment (over
// the job's), its working directory.
func (ws *workspace) command(req *engine.ExecRequest) (argv []string, env map[string]string, workdir string, err error) {
	argv = req.Command
	if len(argv) == 0 {
		shell := req.Shell
		if len(shell) == 0 {
			shell = ws.params.shell
		}
		argv = append(slices.Clone(shell), req.Script)
	}
	workdir = ws.workdir
	if req.Workdir != "" {
		clean, err := engine.CleanPath("workdir", req.Workdir, true)
		if err != nil {
			return nil, nil, "", err
		}
		workdir = path.Join(ws.workdir, clean)
	}
	return argv, req.Env, workdir, nil
}

// baseEnv is the job's environment: config.json's proxies, then environ.
func (ws *workspace) baseEnv() []string {
	env := map[string]string{}
	maps.Copy(env, ws.params.proxyEnv)
	maps.Copy(env, ws.params.environ)
	return envList(env)
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// hostConfig is what the job's container and every command's container
// share: the workspace and volumes, init, limits, network.
func (ws *workspace) hostConfig() *container.HostConfig {
	// The first container that mounts the workspace volume creates it,
	// with the engine's labels (Setup makes no call of its own for it).
	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: ws.volume, Target: ws.workdir, VolumeOptions: &mount.VolumeOptions{Labels: ws.labels}}}
	for _, v := range ws.params.volumes {
		m := mount.Mount{Type: mount.TypeVolume, Source: v.name, Target: v.path, ReadOnly: v.readOnly}
		if strings.HasPrefix(v.name, "/") {
			m.Type = mount.TypeBind
		}
		mounts = append(mounts, m)
	}
	init := ws.params.init
	hc := &container.HostConfig{
		Mounts: mounts,
		Init:   &init,
		// The output is read through the attach and masked by the
		// server: the daemon keeps no copy of it (secrets included) in a
		// log file on its host.
		LogConfig: container.LogConfig{Type: "none"},
	}
	hc.Memory = ws.params.memory
	hc.NanoCPUs = ws.params.nanoCPUs
	if ws.params.pidsLimit > 0 {
		n := ws.params.pidsLimit
		hc.PidsLimit = &n
	}
	switch ws.params.network {
	case "job":
		hc.NetworkMode = container.NetworkMode(ws.network)
	default:
		hc.NetworkMode = container.NetworkMode(ws.params.network)
	}
	return hc
}

// containerConfig is the container of one command that does not run in
// the job's container (another image, or an image without sh).
func (ws *workspace) containerConfig(req *engine.ExecRequest, image, holder string) (*container.Config, *container.HostConfig, error) {
	argv, cmdEnv, workdir, err := ws.command(req)
	if err != nil {
		return nil, nil, err
	}
	env := map[string]string{}
	maps.Copy(env, ws.params.proxyEnv)
	maps.Copy(env, ws.params.environ)
	maps.Copy(env, cmdEnv)
	labels := withLabel(ws.labels, labelRole, "command")
	if req.ExecID != "" {
		labels["palvella.dev/exec"] = req.ExecID
	}
	cfg := &container.Config{
		Image: image,
		// The argv is the whole command: the image's entrypoint does not
		// wrap it.
		Entrypoint:   argv[:1],
		Cmd:          argv[1:],
		Env:          envList(env),
		WorkingDir:   workdir,
		User:         ws.params.user,
		Labels:       labels,
		AttachStdout: true,
		AttachStderr: true,
	}
	hc := ws.hostConfig()
	if holder != "" {
		hc.PidMode = container.PidMode("container:" + holder)
	}
	return cfg, hc, nil
}

func (ws *workspace) platform() *ocispec.Platform {
	if ws.params.platform == "" {
		return nil
	}
	pl := platformOf(ws.params.platform)
	return &pl
}

// filesInTar is the archive copied into the workspace before a command:
// its files in, with their directories, and the workdir.
func filesInTar(req *engine.ExecRequest) io.Reader {
	if len(req.FilesIn) == 0 && req.Workdir == "" {
		return nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{".": true}
	addDirs := func(p string) {
		var parts []string
		for d := p; d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			dirs[parts[i]] = true
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parts[i] + "/", Mode: 0o755, ModTime: time.Now()})
		}
	}
	if req.Workdir != "" {
		clean, _ := engine.CleanPath("workdir", req.Workdir, true)
		addDirs(clean)
	}
	for _, f := range req.FilesIn {
		clean, _ := engine.CleanPath("files_in", f.Path, false)
		addDirs(path.Dir(clean))
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: clean, Mode: mode, Size: int64(len(f.Content)), ModTime: time.Now()})
		tw.Write(f.Content)
	}
	tw.Close()
	return &buf
}

// filesOut reads files of the workspace back from the stopped container.
// What is not a regular file (absent, a directory, a symbolic link) is
// left out.
func (ws *workspace) filesOut(ctx context.Context, id string, paths []string) ([]engine.File, error) {
	var files []engine.File
	total := 0
	for i, p := range paths {
		clean, err := engine.CleanPath(fmt.Sprintf("files_out[%d]", i), p, false)
		if err != nil {
			return nil, err
		}
		res, err := ws.d.c.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path.Join(ws.workdir, clean)})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("docker engine: read %s from the workspace: %w", clean, err)
		}
		tr := tar.NewReader(res.Content)
		h, err := tr.Next()
		if err != nil || h.Typeflag != tar.TypeReg {
			res.Content.Close()
			continue
		}
		if h.Size > int64(maxFilesOut-total) {
			res.Content.Close()
			return nil, sdk.Errorf(sdk.ErrResourceExhausted, fmt.Sprintf("files_out[%d]", i), "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
		}
		content, err := io.ReadAll(io.LimitReader(tr, h.Size))
		res.Content.Close()
		if err != nil {
			return nil, fmt.Errorf("docker engine: read %s from the workspace: %w", clean, err)
		}
		total += len(content)
		files = append(files, engine.File{Path: clean, Content: content, Mode: h.FileInfo().Mode().Perm()})
	}
	return files, nil
}

// outputError is the output function's error, told apart from a broken
// stream.
type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }

// demux reads the daemon's multiplexed stream (an 8-byte header: stream,
// three zero bytes, a big-endian length; then the data) and hands each
// frame to out.
func demux(r io.Reader, out func(string, []byte) error) error {
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		stream := engine.Stdout
		if hdr[0] == 2 {
			stream = engine.Stderr
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		for n > 0 {
			chunk := min(n, len(buf))
			if _, err := io.ReadFull(r, buf[:chunk]); err != nil {
				return err
			}
			n -= chunk
			if hdr[0] != 1 && hdr[0] != 2 {
				continue
			}
			if err := out(stream, slices.Clone(buf[:chunk])); err != nil {
				return outputError{err}
			}
		}
	}
}
