package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// workspace is one job's directory and the commands running in it. Its
// fields other than the paths are guarded by Plugin.mu.
type workspace struct {
	id string
	// dir holds work (the commands' workdir) and tmp (their TMPDIR).
	dir, work, tmp string
	// shell and environ are the workspace's options (a named engine's
	// parameters): the shell scripts run with, instead of the
	// configuration's, and variables every command gets.
	shell   []string
	environ map[string]string

	running   map[string]*run   // by exec ID
	all       map[*run]struct{} // every running Exec, with or without an ID
	cancelled map[string]bool   // IDs cancelled before their Exec started
	// execs identifies the processes of each running command, as written
	// in the workspace's record; cgroup, when set, is the engine's cgroup
	// directory, written in the record at Setup, below which every command
	// runs when the engine uses cgroups (then execs stays empty).
	execs  map[*run]execRecord
	cgroup string
}

// run is one running Exec.
type run struct {
	stopOnce sync.Once
	stopped  chan struct{} // closed by Cancel or Teardown
	done     chan struct{} // closed when the Exec has finished with the workspace
}

func newRun() *run { return &run{stopped: make(chan struct{}), done: make(chan struct{})} }

func (r *run) stop() { r.stopOnce.Do(func() { close(r.stopped) }) }

// Setup creates a fresh workspace directory under the configured root.
func (p *Plugin) Setup(ctx context.Context, req *engine.SetupRequest) (*engine.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("set up workspace: %w", err)
	}
	shell, environ, err := parseOptions(req.Options)
	if err != nil {
		return nil, err
	}
	cfg := p.config()
	if err := prepareRoot(cfg); err != nil {
		return nil, fmt.Errorf("set up workspace: create root: %w", err)
	}
	if err := host.useRoot(cfg.root); err != nil {
		// Leftovers of an engine that is gone: this workspace is fine.
		fmt.Fprintf(os.Stderr, "%s: %v\n", Name, err)
	}
	cgroup := ""
	if cfg.cgroup {
		cgroup = engineCgroup()
	}
	if dir := p.reuse(cfg, cgroup); dir != "" {
		ws := newWorkspace(dir, cgroup, shell, environ)
		p.mu.Lock()
		p.workspaces[ws.id] = ws
		p.mu.Unlock()
		return &engine.Workspace{ID: ws.id, Workdir: ws.work}, nil
	}
	dir, err := os.MkdirTemp(cfg.root, "ws-")
	if err != nil {
		return nil, fmt.Errorf("set up workspace: %w", err)
	}
	ws := newWorkspace(dir, cgroup, shell, environ)
	if err := writeRecord(dir, &wsRecord{Owner: host.self, Cgroup: ws.cgroup}); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("set up workspace: %w", err)
	}
	for _, d := range []string{ws.work, ws.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(dir) // nothing refers to it yet
			_ = os.Remove(statePath(dir))
			return nil, fmt.Errorf("set up workspace: %w", err)
		}
	}
	if cfg.jobUID >= 0 {
		// The commands' user owns the workspace; the record beside it
		// stays the engine's.
		for _, d := range []string{ws.dir, ws.work, ws.tmp} {
			if err := os.Lchown(d, cfg.jobUID, cfg.jobGID); err != nil {
				_ = os.RemoveAll(dir)
				_ = os.Remove(statePath(dir))
				return nil, fmt.Errorf("set up workspace: give it to uid %d: %w", cfg.jobUID, err)
			}
		}
	}
	p.mu.Lock()
	p.workspaces[ws.id] = ws
	p.mu.Unlock()
	return &engine.Workspace{ID: ws.id, Workdir: ws.work}, nil
}

func newWorkspace(dir, cgroup string, shell []string, environ map[string]string) *workspace {
	return &workspace{
		id: filepath.Base(dir), dir: dir, work: filepath.Join(dir, "work"), tmp: filepath.Join(dir, "tmp"),
		running: map[string]*run{}, all: map[*run]struct{}{}, cancelled: map[string]bool{},
		execs: map[*run]execRecord{}, shell: shell, environ: environ, cgroup: cgroup,
	}
}

// checkOptions rejects engine options: the local engine has none.
func parseOptions(opts map[string]any) (shell []string, environ map[string]string, err error) {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := opts[k]; k {
		case "image":
			return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, "options.image", "the local engine runs commands on the host and cannot use an image; choose a container engine")
		case "shell":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, "options.shell", "must be a non-empty list of strings, such as [bash, -e, -c]")
			}
			for i, item := range list {
				s, ok := item.(string)
				if !ok || s == "" {
					return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("options.shell[%d]", i), "must be a non-empty string")
				}
				shell = append(shell, s)
			}
		case "environ":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, "options.environ", "must be an object of variable names to strings")
			}
			environ = make(map[string]string, len(m))
			for name, val := range m {
				s, ok := val.(string)
				if !ok || name == "" || strings.ContainsAny(name, "=\x00") {
					return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, "options.environ."+name, "must be a variable name with a string value")
				}
				environ[name] = s
			}
		default:
			return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, "options."+k, "unknown option (the local engine takes shell and environ)")
		}
	}
	return shell, environ, nil
}

// Cancel stops a running Exec, or marks its ID so that it is cancelled as
// soon as it starts.
func (p *Plugin) Cancel(ctx context.Context, workspaceID, execID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cancel exec %q: %w", execID, err)
	}
	if execID == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "exec_id", "is required")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ws, ok := p.workspaces[workspaceID]
	if !ok {
		return sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	if r, ok := ws.running[execID]; ok {
		r.stop()
		return nil
	}
	ws.cancelled[execID] = true
	return nil
}

// Teardown stops every command of the workspace, waits for them and
// removes its directory.
func (p *Plugin) Teardown(ctx context.Context, workspaceID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tear down workspace %q: %w", workspaceID, err)
	}
	p.mu.Lock()
	ws, ok := p.workspaces[workspaceID]
	if !ok {
		p.mu.Unlock()
		return sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	delete(p.workspaces, workspaceID)
	runs := make([]*run, 0, len(ws.all))
	for r := range ws.all {
		runs = append(runs, r)
	}
	p.mu.Unlock()

	// Waiting is bounded by the kill grace: the workspace is already gone
	// for new calls, so it is finished even if ctx ends meanwhile.
	for _, r := range runs {
		r.stop()
	}
	for _, r := range runs {
		<-r.done
	}
	if p.keep(ws, p.config()) {
		return nil
	}
	if err := removeAll(ws.dir); err != nil {
		return fmt.Errorf("tear down workspace %q: %w", workspaceID, err)
	}
	if err := os.Remove(statePath(ws.dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tear down workspace %q: %w", workspaceID, err)
	}
	return nil
}

// saveRecord rewrites the workspace's record with its running commands.
// The caller holds p.mu.
func (ws *workspace) saveRecord() error {
	rec := &wsRecord{Owner: host.self, Cgroup: ws.cgroup}
	for _, x := range ws.execs {
		rec.Execs = append(rec.Execs, x)
	}
	return writeRecord(ws.dir, rec)
}

// removeAll removes dir even when commands left read-only directories in
// it.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700) // best effort; RemoveAll below reports what is left
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// lookup returns a workspace, or sdk.ErrNotFound.
func (p *Plugin) lookup(id string) (*workspace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws, ok := p.workspaces[id]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", id)
	}
	return ws, nil
}
