package sdktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// LocalHost is a real sdk.Host for testing plugins that call back into the
// core: Exec runs commands with os/exec in a directory, as the local engine
// does; storage is a map; no credential is readable. It records the
// execution each Exec call carried.
type LocalHost struct {
	// NoFilesOut makes Exec ignore FilesOut, as a host that predates it.
	NoFilesOut bool

	dir string

	mu      sync.Mutex
	refs    []sdk.ExecutionRef
	objects map[string][]byte
}

var _ sdk.Host = (*LocalHost)(nil)

// NewLocalHost returns a LocalHost that runs commands in dir.
func NewLocalHost(dir string) *LocalHost {
	return &LocalHost{dir: dir, objects: map[string][]byte{}}
}

// Log discards the line.
func (h *LocalHost) Log(context.Context, sdk.LogLevel, string, map[string]string) error { return nil }

// ReadCredential always answers sdk.ErrNotFound.
func (h *LocalHost) ReadCredential(_ context.Context, name, _ string) ([]byte, error) {
	return nil, sdk.Errorf(sdk.ErrNotFound, "name", "no credential %q", name)
}

// PutObject stores the object in memory.
func (h *LocalHost) PutObject(_ context.Context, key string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.objects[key] = b
	return nil
}

// GetObject reads an object stored with PutObject.
func (h *LocalHost) GetObject(_ context.Context, key string) (io.ReadCloser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.objects[key]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "key", "no object %q", key)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exec runs the command in the host's directory.
func (h *LocalHost) Exec(ctx context.Context, req *sdk.HostExecRequest, out func(string, []byte)) (*sdk.HostExecResult, error) {
	ref, _ := sdk.ExecutionFrom(ctx)
	h.mu.Lock()
	h.refs = append(h.refs, ref)
	h.mu.Unlock()

	argv := req.Command
	if len(argv) == 0 {
		shell := req.Shell
		if len(shell) == 0 {
			shell = []string{"sh", "-e", "-c"}
		}
		argv = append(append([]string(nil), shell...), req.Script)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(h.dir, req.Workdir)
	cmd.Env = os.Environ()
	for k, v := range req.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var mu sync.Mutex
	cmd.Stdout = streamWriter{"stdout", out, &mu}
	cmd.Stderr = streamWriter{"stderr", out, &mu}
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := &sdk.HostExecResult{}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
	} else if err != nil {
		return nil, err
	}
	if !h.NoFilesOut {
		for _, p := range req.FilesOut {
			if b, err := os.ReadFile(filepath.Join(h.dir, filepath.FromSlash(p))); err == nil {
				if res.FilesOut == nil {
					res.FilesOut = map[string][]byte{}
				}
				res.FilesOut[p] = b
			}
		}
	}
	return res, nil
}

// Refs returns the executions Exec calls carried, in order.
func (h *LocalHost) Refs() []sdk.ExecutionRef {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.ExecutionRef(nil), h.refs...)
}

type streamWriter struct {
	name string
	out  func(string, []byte)
	mu   *sync.Mutex
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out != nil {
		w.out(w.name, append([]byte(nil), p...))
	}
	return len(p), nil
}
