package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/engine"
)

// poolEngine is a local engine that runs commands in cgroups, where it
// keeps clean workspaces; the test is skipped where cgroups cannot be
// used, since the engine then keeps none.
func poolEngine(t *testing.T) (*Plugin, string) {
	t.Helper()
	p := newEngine(t)
	if !p.config().cgroup {
		t.Skip("no cgroup containment on this host: the engine keeps no workspaces")
	}
	return p, p.config().root
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func execOK(t *testing.T, p *Plugin, ws *engine.Workspace, script string) string {
	t.Helper()
	var out strings.Builder
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: script},
		func(_ string, b []byte) error { out.Write(b); return nil })
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec %q: %v %+v\n%s", script, err, res, out.String())
	}
	return out.String()
}

// A workspace whose command left only a few regular files (which are
// removed) is kept and given to the next Setup under a new ID: the same
// directory, renamed, empty and private.
// Its old ID and workdir are gone at Teardown.
func TestCleanWorkspaceIsReusedUnderANewID(t *testing.T) {
	p, root := poolEngine(t)
	ctx := context.Background()
	a, err := p.Setup(ctx, &engine.SetupRequest{Job: "a"})
	if err != nil {
		t.Fatal(err)
	}
	ino := inode(t, a.Workdir)
	execOK(t, p, a, `echo x > .palvella-outputs; echo y > "$TMPDIR/t"`)
	if err := p.Teardown(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	kept := len(p.pool)
	p.mu.Unlock()
	if kept != 1 {
		t.Fatalf("%d workspaces kept after the Teardown of a clean one, want 1", kept)
	}
	if _, err := os.Lstat(a.Workdir); !os.IsNotExist(err) {
		t.Fatalf("the workdir of a torn-down workspace: %v, want it gone", err)
	}
	if _, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: a.ID, Script: "true"}, nil); err == nil {
		t.Fatal("an Exec in a torn-down workspace's ID succeeded")
	}
	b := setup(t, p)
	if b.ID == a.ID || b.Workdir == a.Workdir {
		t.Fatalf("the next workspace has ID %s and workdir %s, as the torn-down one", b.ID, b.Workdir)
	}
	if inode(t, b.Workdir) != ino {
		t.Fatalf("the next workspace is a new directory, not the kept one")
	}
	if got := execOK(t, p, b, `ls -A; ls -A "$TMPDIR"; stat -c %a .`); strings.TrimSpace(got) != "700" {
		t.Fatalf("the reused workspace: %q, want it empty with mode 700", got)
	}
	if _, err := os.Stat(statePath(filepath.Dir(b.Workdir))); err != nil {
		t.Fatalf("the reused workspace's record: %v", err)
	}
	var names []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{filepath.Base(filepath.Dir(b.Workdir)), filepath.Base(filepath.Dir(b.Workdir)) + stateSuffix}; !slices.Equal(names, want) {
		t.Fatalf("the root holds %v, want %v", names, want)
	}
}

// A workspace whose command changed anything is removed, never reused.
func TestChangedWorkspaceIsNotReused(t *testing.T) {
	for _, script := range []string{
		"mkdir d",
		`touch a b c; touch "$TMPDIR/d" "$TMPDIR/e"`,
		"touch f && ln f g",
		"ln -s /etc/passwd f",
		"mkfifo f",
		"mkdir d && rmdir d && chmod 0755 .",
		"chmod 0755 ..",
		`chmod 0750 "$TMPDIR"`,
		"cd .. && mv work w && ln -s /tmp work",
		"cd .. && touch extra",
		"chmod g+s .",
	} {
		t.Run(script, func(t *testing.T) {
			p, root := poolEngine(t)
			ctx := context.Background()
			a, err := p.Setup(ctx, &engine.SetupRequest{Job: "a"})
			if err != nil {
				t.Fatal(err)
			}
			execOK(t, p, a, script)
			if err := p.Teardown(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Fatalf("the root holds %d entries after the Teardown of a changed workspace, want it removed", len(entries))
			}
			p.mu.Lock()
			kept := len(p.pool)
			p.mu.Unlock()
			if kept != 0 {
				t.Fatalf("%d workspaces kept after the Teardown of a changed one", kept)
			}
		})
	}
}

// Kept workspaces go with their engine: the sweep of a root (the next
// engine's, or the supervisor's when its engine exits) removes a kept
// workspace whose engine is gone, and its record, as it removes the
// engine's other workspaces. (The record is rewritten to name an engine
// that has exited and no cgroup: the sweep kills the cgroup a record
// names, and this test's engine is the test binary itself.)
func TestKeptWorkspacesAreSweptWithTheirEngine(t *testing.T) {
	p, root := poolEngine(t)
	ctx := context.Background()
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "a"})
	if err != nil {
		t.Fatal(err)
	}
	execOK(t, p, ws, "true")
	if err := p.Teardown(ctx, ws.ID); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	kept := slices.Clone(p.pool)
	p.mu.Unlock()
	if len(kept) != 1 || !strings.HasPrefix(filepath.Base(kept[0].dir), "pool-") {
		t.Fatalf("kept %+v, want one pool- workspace", kept)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(kept[0].dir, &wsRecord{Owner: procIdentity{PID: gone.Process.Pid, Start: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := sweepRoot(root, procIdentity{}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the root holds %v after the sweep, want nothing", names)
	}
}
