package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// A plugin process killed in the middle of a job leaves its container,
// network and volume; the next engine to start on the machine removes
// them, and leaves alone those of an engine that still runs.
func TestKilledPluginLeavesNothingAfterTheNextStart(t *testing.T) {
	d := dockertest.Shared(t)
	state := t.TempDir()
	ctx := context.Background()
	c := testClient(t)

	// An engine that stays alive, with a workspace of its own.
	alive := newEngine(t, map[string]any{"state_dir": state})
	kept := setup(t, alive, nil)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(sdktest.MinimalEnv(), serveEnv+"=1")
	proc := sdktest.Launch(t, cmd)
	p := sdktest.Dispense[engine.Engine](t, proc, sdk.CategoryEngine)
	resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"host": d.Host, "image": dockertest.Image, "state_dir": state}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "killed"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	ready := make(chan struct{})
	go p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo ready; sleep 600"}, func(s string, b []byte) error {
		if strings.Contains(string(b), "ready") {
			select {
			case <-ready:
			default:
				close(ready)
			}
		}
		return nil
	})
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("the command did not start")
	}
	if err := syscall.Kill(proc.Client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cs, ns, vs := labelled(t, c, labelWorkspace+"="+ws.ID)
	if len(cs) == 0 || len(ns) != 1 || len(vs) != 1 {
		t.Fatalf("after the kill, want the job's containers, network and volume still there (the sweep has something to do): %v %v %v", cs, ns, vs)
	}

	// The next start on this machine sweeps.
	next := New()
	resp, err = next.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"host": d.Host, "image": dockertest.Image, "state_dir": state}})
	if err != nil || len(resp.Diagnostics) > 0 {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	waitNone(t, c, labelWorkspace+"="+ws.ID, "after the next engine started")

	// The live engine's workspace was left alone and still works.
	res, out, _ := execText(t, alive, &engine.ExecRequest{WorkspaceID: kept.ID, Script: "echo still-here"})
	if res.ExitCode != 0 || out != "still-here\n" {
		t.Fatalf("the live engine's workspace after another engine started: exit %d, %q", res.ExitCode, out)
	}
}

// Two engine processes of one machine whose locks are in different state
// directories (two workers with homes of their own) share a daemon: the
// start of one leaves the other's workspace alone, running command and
// all, though the other's lock is not in its directory.
func TestStartLeavesTheWorkspacesOfAnotherStateDirectory(t *testing.T) {
	alive := newEngine(t, map[string]any{"state_dir": t.TempDir()})
	kept := setup(t, alive, nil)
	done := make(chan string, 1)
	go func() {
		res, out, _ := execText(t, alive, &engine.ExecRequest{WorkspaceID: kept.ID, Script: "echo started; sleep 2; echo ended"})
		done <- fmt.Sprintf("exit %d, %q", res.ExitCode, out)
	}()
	time.Sleep(500 * time.Millisecond)

	newEngine(t, map[string]any{"state_dir": t.TempDir()}) // sweeps at Configure

	if got := <-done; got != `exit 0, "started\nended\n"` {
		t.Fatalf("the command of the other directory's engine while an engine started: %s, want it to run to its end", got)
	}
	res, out, _ := execText(t, alive, &engine.ExecRequest{WorkspaceID: kept.ID, Script: "echo still-here"})
	if res.ExitCode != 0 || out != "still-here\n" {
		t.Fatalf("the other directory's workspace after an engine started: exit %d, %q", res.ExitCode, out)
	}
}
