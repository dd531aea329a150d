package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
)

// buildLiveAction builds a real action plugin, action-live, at each
// version (its own module, on the SDK). Its action type hold logs and
// outputs the version serving it and, given a gate, waits until that file
// exists. A version in broken starts for --describe (so it can be
// published) but exits at once when launched as a plugin.
func buildLiveAction(t *testing.T, dir string, versions []string, broken ...string) map[string]string {
	t.Helper()
	src := filepath.Join(dir, "live-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/live\n\ngo 1.26\n\nrequire github.com/palvella/palvella v0.0.0\n\nreplace github.com/palvella/palvella => "+repoRoot+"\n")
	sum, err := os.ReadFile(filepath.Join(repoRoot, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	write("main.go", `package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

var version, broken = "0.0.0", ""

type live struct{}

func (live) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "action-live", Version: version, Description: "Holds a job until a file exists.",
		Categories: []sdk.Category{sdk.CategoryAction}, ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		Types: []sdk.TypeInfo{{Category: sdk.CategoryAction, Name: "hold", Description: "Wait for params.gate to exist.",
			ParamsSchema: map[string]any{"type": "object", "properties": map[string]any{"gate": map[string]any{"type": "string"}}, "additionalProperties": false}}}}, nil
}

func (live) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (live) Run(ctx context.Context, req *action.RunRequest, ev action.Events) (*action.Result, error) {
	ev.Log(action.StreamStdout, fmt.Sprintf("served by action-live %s (pid %d)", version, os.Getpid()))
	if gate, _ := req.Params["gate"].(string); gate != "" {
		for {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return &action.Result{Status: action.StatusSuccess, Outputs: map[string]any{"version": version, "pid": fmt.Sprint(os.Getpid())}}, nil
}

func main() {
	if broken != "" && !slices.Contains(os.Args, "--describe") {
		fmt.Fprintln(os.Stderr, "action-live: this build cannot start")
		os.Exit(1)
	}
	sdk.Serve(live{}, action.Service(live{}))
}
`)
	bins := map[string]string{}
	build := func(v, flags string) {
		out := filepath.Join(dir, "live-"+v)
		cmd := exec.Command("go", "build", "-o", out, "-ldflags", flags, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build action-live %s: %v\n%s", v, err, msg)
		}
		bins[v] = out
	}
	for _, v := range versions {
		build(v, "-X main.version="+v)
	}
	for _, v := range broken {
		build(v, "-X main.version="+v+" -X main.broken=yes")
	}
	return bins
}

const livePipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: live
spec:
  params:
    - name: gate
      type: string
      default: ""
  jobs:
    - name: hold
      actions:
        - name: first
          type: live/hold
          gate: ${{ params.gate }}
`

// liveRows is plugin list -o json.
func (s *testServer) liveRow(name string) (pluginRow, bool) {
	s.t.Helper()
	var rows []pluginRow
	if err := json.Unmarshal([]byte(s.mustCLI("plugin", "list", "-o", "json")), &rows); err != nil {
		s.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name {
			return r, true
		}
	}
	return pluginRow{}, false
}

func outputOf(t *testing.T, r *resource.Run, key string) string {
	t.Helper()
	v, _ := actionOf(t, r, "hold", "first").Outputs[key].(string)
	return v
}

// TestPluginsChangeUnderARunningServer adds, upgrades, removes and breaks
// a plugin under one running server, never restarting it: the plugin is
// usable as soon as it is added; a job in flight during the upgrade
// finishes on the old version while the next run gets the new one and
// plugin list shows both; the old version's process and files go once
// its job ends; a removal lets the job using it finish and fails the next
// at once; a version that cannot start fails its job naming it.
func TestPluginsChangeUnderARunningServer(t *testing.T) {
	work := t.TempDir()
	bins := buildLiveAction(t, work, []string{"1.0.0", "1.1.0"}, "3.0.0")
	key := filepath.Join(work, "root.key")
	reg := filepath.Join(work, "acme")
	must(t, work, "registry", "keygen", "--out", key)
	must(t, work, "registry", "init", reg, "--name", "acme", "--root-key", key)
	publish := func(v string) {
		must(t, work, "registry", "publish", reg, "--key", key, "--plugin", bins[v], "--name", "action-live", "--version", v,
			"--license", "Apache-2.0", "--description", "Holds jobs")
	}
	publish("1.0.0")
	url, _ := serveRegistry(t, reg)
	home := newHome(t)
	must(t, home, "registry", "add", "acme", url, "--root-key", key+".pub")
	s := startServer(t, home)
	pipeline := filepath.Join(work, "live.yaml")
	if err := os.WriteFile(pipeline, []byte(livePipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	gates := t.TempDir()
	open := func(name string) {
		if err := os.WriteFile(filepath.Join(gates, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A job holding the plugin: started, and its action running.
	holding := func(run, gate string) {
		s.mustCLI("pipeline", "run", "live", "-p", "gate="+filepath.Join(gates, gate))
		s.waitRun(run, "running its action", func(r *resource.Run) bool {
			j := r.Job("hold")
			return j != nil && j.Action("first") != nil && j.Action("first").Status == resource.StatusRunning
		})
	}
	versionDir := func(v string) string { return filepath.Join(home, "plugins", "action-live", v) }
	// The steps build on each other, on one server: each fails the test.
	step := func(name string, f func(t *testing.T)) {
		t.Logf("step: %s", name)
		f(t)
	}

	step("an added plugin is used without a restart", func(t *testing.T) {
		if out, errOut, code := s.cli("pipeline", "apply", "-f", pipeline); code == 0 || !strings.Contains(out+errOut, "live/hold") {
			t.Fatalf("apply before the plugin is added: exit %d, output %q; want a refusal naming the unknown type", code, out+errOut)
		}
		_, errOut, code := s.cli("plugin", "add", "action-live@^1")
		if code != 0 || !strings.Contains(errOut, "added    action-live now serves 1.0.0") {
			t.Fatalf("plugin add: exit %d, stderr %q; want the server to say it added action-live 1.0.0", code, errOut)
		}
		s.mustCLI("pipeline", "apply", "-f", pipeline)
		s.mustCLI("pipeline", "run", "live", "--wait")
		if r := s.run("live-1"); r.Status != resource.StatusSuccess || outputOf(t, r, "version") != "1.0.0" {
			t.Fatalf("live-1 = %s, version %q; want success on 1.0.0", r.Status, outputOf(t, r, "version"))
		}
	})

	var oldPID int
	step("an upgrade lets the job in flight finish on the old version", func(t *testing.T) {
		holding("live-2", "upgrade")
		publish("1.1.0")
		out, errOut, code := s.cli("plugin", "upgrade", "action-live")
		if code != 0 || !strings.Contains(errOut, "replaced action-live now serves 1.1.0; 1.0.0 finishes the 1 job") {
			t.Fatalf("plugin upgrade: exit %d, stdout %q, stderr %q; want the server to say 1.1.0 serves and 1.0.0 finishes its job", code, out, errOut)
		}
		// Both instances show, each with its version.
		row, _ := s.liveRow("action-live")
		if len(row.Instances) != 2 || row.Instances[0].Version != "1.1.0" || row.Instances[0].State != pluginhost.InstanceServing ||
			row.Instances[1].Version != "1.0.0" || row.Instances[1].State != pluginhost.InstanceDraining || row.Instances[1].Leases != 1 {
			t.Fatalf("plugin list instances = %+v, want 1.1.0 serving and 1.0.0 draining with a user", row.Instances)
		}
		oldPID = row.Instances[1].PID
		if table := s.mustCLI("plugin", "list"); !strings.Contains(table, "1.0.0 draining (pid") {
			t.Errorf("plugin list does not show the draining instance:\n%s", table)
		}
		if _, err := os.Stat(versionDir("1.0.0")); err != nil {
			t.Fatalf("the binary of the version in use was deleted: %v", err)
		}
		// The next run uses the new version, while live-2 still holds the old.
		s.mustCLI("pipeline", "run", "live", "--wait")
		if r := s.run("live-3"); r.Status != resource.StatusSuccess || outputOf(t, r, "version") != "1.1.0" {
			t.Fatalf("live-3 = %s on %q; want success on 1.1.0", r.Status, outputOf(t, r, "version"))
		}
		if r := s.run("live-2"); r.Status != resource.StatusRunning {
			t.Fatalf("live-2 = %s while its gate is shut", r.Status)
		}
		open("upgrade")
		r := s.waitRun("live-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		if r.Status != resource.StatusSuccess || outputOf(t, r, "version") != "1.0.0" || outputOf(t, r, "pid") != strconv.Itoa(oldPID) {
			t.Fatalf("live-2 = %s on version %q pid %q; want success on 1.0.0 pid %d", r.Status, outputOf(t, r, "version"), outputOf(t, r, "pid"), oldPID)
		}
		// Its last job done, the old version's process and files go.
		waitFor(t, "the old process stops", func() bool { return syscall.Kill(oldPID, 0) != nil })
		waitFor(t, "the old version's files are deleted", func() bool {
			_, err := os.Stat(versionDir("1.0.0"))
			return os.IsNotExist(err)
		})
		if row, _ := s.liveRow("action-live"); len(row.Instances) != 1 || row.Instances[0].Version != "1.1.0" {
			t.Errorf("instances after draining = %+v, want 1.1.0 alone", row.Instances)
		}
	})

	step("a removal lets the job using it finish and fails the next at once", func(t *testing.T) {
		holding("live-4", "remove")
		row, _ := s.liveRow("action-live")
		if len(row.Instances) != 1 {
			t.Fatalf("instances = %+v", row.Instances)
		}
		pid := row.Instances[0].PID
		_, errOut, code := s.cli("plugin", "remove", "action-live")
		if code != 0 || !strings.Contains(errOut, "removed  action-live: its process stops once the 1 job") {
			t.Fatalf("plugin remove: exit %d, stderr %q", code, errOut)
		}
		if row, ok := s.liveRow("action-live"); !ok || row.State != "draining" || len(row.Instances) != 1 {
			t.Fatalf("plugin list after the removal = %+v (listed %v), want action-live draining", row, ok)
		}
		start := time.Now()
		s.cli("pipeline", "run", "live", "--wait")
		r := s.run("live-5")
		if r.Status != resource.StatusFailure || !strings.Contains(r.Job("hold").Reason, "live/hold") {
			t.Fatalf("live-5 after the removal = %s (%s), want a failure naming the type", r.Status, r.Job("hold").Reason)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the run needing the removed plugin took %s to fail", d)
		}
		open("remove")
		r = s.waitRun("live-4", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		if r.Status != resource.StatusSuccess || outputOf(t, r, "version") != "1.1.0" {
			t.Fatalf("live-4 = %s on %q, want success on 1.1.0", r.Status, outputOf(t, r, "version"))
		}
		waitFor(t, "the removed plugin's process stops", func() bool { return syscall.Kill(pid, 0) != nil })
		waitFor(t, "the removed plugin's files are deleted", func() bool {
			_, err := os.Stat(filepath.Join(home, "plugins", "action-live"))
			return os.IsNotExist(err)
		})
		if _, ok := s.liveRow("action-live"); ok {
			t.Error("plugin list still shows the removed plugin once drained")
		}
	})

	step("a version that cannot start fails its job naming it", func(t *testing.T) {
		publish("3.0.0")
		_, errOut, code := s.cli("plugin", "add", "action-live@3.0.0")
		if code != 0 || !strings.Contains(errOut, "Warning: action-live does not start") {
			t.Fatalf("plugin add of a broken version: exit %d, stderr %q; want a warning that it does not start", code, errOut)
		}
		start := time.Now()
		s.cli("pipeline", "run", "live", "--wait")
		r := s.run("live-6")
		reason := r.Job("hold").Reason
		if r.Status != resource.StatusFailure || !strings.Contains(reason, "action-live") || !strings.Contains(reason, "exited before the handshake") {
			t.Fatalf("live-6 = %s (%s), want a failure naming action-live and why", r.Status, reason)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the run needing the broken plugin took %s to fail", d)
		}
	})
}
