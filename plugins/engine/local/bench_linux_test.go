//go:build linux

package local

import (
	"context"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// BenchmarkExecSetups measures one `true` in each setup: what the launcher
// (user switch, Landlock) and the cgroup cost per command.
func BenchmarkExecSetups(b *testing.B) {
	for _, s := range []struct {
		name  string
		extra map[string]any
	}{
		{"plain", map[string]any{"user": "root", "sandbox": "none", "containment": "process_group"}},
		{"cgroup", map[string]any{"user": "root", "sandbox": "none", "containment": "cgroup"}},
		{"launcher-user", map[string]any{"sandbox": "none", "containment": "process_group"}},
		{"launcher-landlock", map[string]any{"sandbox": "landlock", "containment": "process_group"}},
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
