//go:build linux

package local

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
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
