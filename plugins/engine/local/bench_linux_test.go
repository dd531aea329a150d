//go:build linux

package local

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"golang.org/x/sys/unix"
)

// BenchmarkExecSetups measures one `true` in each setup: what the user
// switch, the Landlock sandbox and the cgroup cost per command.
func BenchmarkExecSetups(b *testing.B) {
	for _, s := range []struct {
		name  string
		extra map[string]any
	}{
		{"plain", map[string]any{"user": "root", "sandbox": "none", "containment": "process_group"}},
		{"cgroup", map[string]any{"user": "root", "sandbox": "none", "containment": "cgroup"}},
		{"user", map[string]any{"sandbox": "none", "containment": "process_group"}},
		{"landlock", map[string]any{"sandbox": "landlock", "containment": "process_group"}},
		{"default", map[string]any{}},
	} {
		b.Run(s.name, func(b *testing.B) {
			p := New()
			cfg := map[string]any{"root": reachableDir(b), "kill_grace": "500ms"}
			for k, v := range s.extra {
				cfg[k] = v
			}
			if resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg}); err != nil || sdk.HasErrors(resp.Diagnostics) {
				b.Skipf("setup %s not available here: %v %v", s.name, err, resp)
			}
			ws := setup(b, p)
			req := &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"true"}}
			for b.Loop() {
				res, err := p.Exec(context.Background(), req, nil)
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("Exec: %v %+v", err, res)
				}
			}
		})
	}
}

// BenchmarkSandboxRuleset measures building a command's Landlock ruleset,
// with what it grants outside the denied paths found afresh (cold) and kept
// from the command before (warm). Its cost grows with the entries of the
// directories on the way to the denied paths (/tmp, with the workspace
// root under it).
func BenchmarkSandboxRuleset(b *testing.B) {
	if landlockABI() < 1 {
		b.Fatal("this kernel has no Landlock")
	}
	root := reachableDir(b)
	spec := &sandboxSpec{Deny: []string{filepath.Join(root, "home"), filepath.Join(root, "workspaces")}, Allow: []string{root}}
	// changed: an entry is added to the directory holding root (/tmp) and
	// removed again before each command, as other programs do on a busy
	// machine.
	for _, name := range []string{"cold", "warm", "changed"} {
		if name == "warm" {
			// A directory changed within the last second is listed
			// again each time (grantCache): let the new root settle.
			time.Sleep(1100 * time.Millisecond)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				switch name {
				case "cold":
					oneLayerGrants.mu.Lock()
					oneLayerGrants.forget()
					oneLayerGrants.mu.Unlock()
				case "changed":
					if err := os.Mkdir(root+"-churn", 0o700); err != nil {
						b.Fatal(err)
					}
					if err := os.Remove(root + "-churn"); err != nil {
						b.Fatal(err)
					}
				}
				fd, err := buildRuleset(spec, oneLayerGrants)
				if err != nil {
					b.Fatal(err)
				}
				syscall.Close(fd)
			}
		})
	}
}

// BenchmarkSandboxEnter measures what a command's sandbox costs the
// engine, from building its rulesets to a thread that entered them, with
// PALVELLA_HOME in the crowded temporary directory (as in the end-to-end
// benchmarks) and a workspace root elsewhere: one ruleset built for each
// command (as before the shared layer), and the two layers, in either
// order of entering them. cpu-ms/op is the process's CPU time (user and
// system) per command: on a loaded machine, steadier than ns/op.
func BenchmarkSandboxEnter(b *testing.B) {
	if landlockABI() < 1 {
		b.Fatal("this kernel has no Landlock")
	}
	home := filepath.Join(reachableDir(b), "home")
	root, err := os.MkdirTemp("/var/tmp", "palvella-bench-root-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(root) })
	ws := filepath.Join(root, "ws-1")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		b.Fatal(err)
	}
	enter := func(b *testing.B, fds ...int) {
		done := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends, sandboxed
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				done <- err
				return
			}
			for _, fd := range fds {
				if _, _, e := syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); e != 0 {
					done <- e
					return
				}
			}
			done <- nil
		}()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the new directories settle (grantCache)
	b.Run("one-ruleset-per-command", func(b *testing.B) {
		spec := &sandboxSpec{Deny: []string{home, root}, Allow: []string{ws}}
		defer reportCPU(b)()
		for b.Loop() {
			fd, err := buildRuleset(spec, oneLayerGrants)
			if err != nil {
				b.Fatal(err)
			}
			enter(b, fd)
		}
	})
	s := sandboxFor([]string{home}, root, ws)
	if s.shared == nil {
		b.Fatal("expected two layers")
	}
	for _, ownFirst := range []bool{false, true} {
		name := "shared-layer-first"
		if ownFirst {
			name = "own-layer-first"
		}
		b.Run(name, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				shared, err := sharedRuleset.ruleset(s.shared)
				if err != nil {
					b.Fatal(err)
				}
				own, err := buildRuleset(s.own, rootGrants)
				if err != nil {
					b.Fatal(err)
				}
				if ownFirst {
					enter(b, own, shared)
				} else {
					enter(b, shared, own)
				}
			}
		})
	}
}

// reportCPU returns a function that reports the process's CPU time per
// op since reportCPU was called.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}
