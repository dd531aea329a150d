//go:build linux

package nomad

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/nomad/nomadtest"
)

// A host that freezes (a worker or server stopped with SIGSTOP, a paused
// machine) cannot renew its job's lease. The engine notices within its
// keepalive (engine.HostKeepalive) and stops the host's command, every
// process of it in the allocation, before the lease could pass the job to
// another worker.
func TestFrozenHostHasItsCommandStopped(t *testing.T) {
	a := nomadtest.Shared(t)
	h := sdktest.StartEngineHost(t, sdktest.EngineHostSpec{
		Path:   os.Args[0],
		Env:    []string{serveEnv + "=1"},
		Config: map[string]any{"address": a.Addr, "driver": "raw_exec", "kill_grace": "1s", "state_dir": stateDir(t)},
		Setup:  engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "1", Job: "frozen"},
		// A child in the background and one in the foreground.
		Exec:  engine.ExecRequest{Script: "sleep 614 & echo ready; sleep 614"},
		Ready: "ready",
	})
	// On raw_exec the command's processes are this machine's.
	sleeps := func() ([]string, error) { return processes("sleep\x00614\x00"), nil }
	// "ready" comes before the sleeps have started.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, _ := sleeps()
		if len(l) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("before the freeze, the command's sleeps: %v; want two", l)
		}
	}

	frozen := h.Freeze()
	took := h.WaitStopped(frozen, sleeps)
	t.Logf("the command stopped %s after its host froze", took.Round(time.Millisecond))

	// Woken, the host finds its Exec failed: the engine dropped the
	// connection.
	h.Thaw()
	if res, errText := h.Result(time.Minute); res != nil || errText == "" {
		t.Errorf("the woken host's Exec: result %+v, error %q; want an error", res, errText)
	}
}

// processes lists the IDs of this machine's processes whose command line
// is cmdline (its arguments each ending in a NUL byte).
func processes(cmdline string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []string
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err == nil && bytes.Equal(b, []byte(cmdline)) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}
