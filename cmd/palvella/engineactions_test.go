package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
	"github.com/palvella/palvella/plugins/engine/nomad/nomadtest"
)

// engineActionsScenario runs, on a server whose named engine "build" is
// given by engine (its type and parameters, YAML at the indentation of an
// engines: item), the setup and teardown actions around a job that
// succeeds, one that fails, one that times out and one that is cancelled.
// The actions append to trace, a file the job sees at jobTrace.
func engineActionsScenario(t *testing.T, engine, trace, jobTrace string) *testServer {
	t.Helper()
	home := t.TempDir()
	conf := configHead + `engines:
  - name: build
` + engine + `
    environ: {WHERE: build}
    setup:
      actions:
        - name: prepare
          run: echo "setup $WHERE" >> ` + jobTrace + `; echo prepared > prepared.txt
    teardown:
      actions:
        - name: clean
          run: echo "teardown $WHERE saw $(cat prepared.txt)" >> ` + jobTrace + `
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, home)
	pipeline := filepath.Join(t.TempDir(), "actions.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(pipeline, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.mustCLI("pipeline", "apply", "-f", pipeline)
	}
	reset := func() {
		t.Helper()
		if err := os.WriteFile(trace, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	readTrace := func() string {
		b, _ := os.ReadFile(trace)
		return string(b)
	}
	const want = "setup build\njob build\nteardown build saw prepared\n"
	write(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: actions}
spec:
  params:
    - {name: fail, type: boolean, default: false}
  jobs:
    - name: built
      engine: build
      actions:
        - name: say
          run: echo "job $WHERE" >> ` + jobTrace + `
        - name: maybe-fail
          if: ${{ params.fail }}
          run: exit 3
`)
	reset()
	s.mustCLI("pipeline", "run", "actions", "--wait")
	r := s.run("actions-1")
	if r.Status != resource.StatusSuccess || readTrace() != want {
		t.Fatalf("run actions-1 is %s, trace %q, want success and %q:\n%s\n%s", r.Status, readTrace(), want, s.mustCLI("run", "get", "actions-1"), s.logTail())
	}
	for _, a := range []string{"setup:prepare", "say", "teardown:clean"} {
		if st := actionOf(t, r, "built", a).Status; st != resource.StatusSuccess {
			t.Errorf("built/%s = %s", a, st)
		}
	}
	if logs := s.mustCLI("run", "logs", "actions-1", "--job", "built"); !strings.Contains(logs, "setup:prepare") || !strings.Contains(logs, "teardown:clean") {
		t.Errorf("the job's log does not show its engine's actions:\n%s", logs)
	}

	// A failing job still gets its teardown.
	reset()
	s.cli("pipeline", "run", "actions", "-p", "fail=true", "--wait")
	if r := s.run("actions-2"); r.Job("built").Status != resource.StatusFailure || readTrace() != want {
		t.Fatalf("actions-2: built = %s, trace %q; want a failure and %q", r.Job("built").Status, readTrace(), want)
	}

	// A job that times out, and one that is cancelled, still get their
	// teardown.
	write(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: slow}
spec:
  jobs:
    - name: built
      engine: build
      timeout: 20s
      actions:
        - name: sleep
          run: echo "job $WHERE" >> ` + jobTrace + `; sleep 300
`)
	reset()
	s.cli("pipeline", "run", "slow", "--wait")
	if r := s.run("slow-1"); r.Job("built").Status != resource.StatusFailure || !strings.Contains(r.Job("built").Reason, "timed out") {
		t.Fatalf("slow-1: built = %s (%s), want timed out", r.Job("built").Status, r.Job("built").Reason)
	}
	if got := readTrace(); got != want {
		t.Fatalf("trace after a timeout: %q, want %q", got, want)
	}
	reset()
	s.mustCLI("pipeline", "run", "slow")
	s.waitRun("slow-2", "running", func(r *resource.Run) bool {
		a := r.Job("built").Action("sleep")
		return a != nil && a.Status == resource.StatusRunning
	})
	s.mustCLI("run", "cancel", "slow-2")
	deadline := time.Now().Add(60 * time.Second)
	for readTrace() != want {
		if time.Now().After(deadline) {
			t.Fatalf("trace after a cancel: %q, want %q", readTrace(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.waitRun("slow-2", "cancelled", func(r *resource.Run) bool { return r.Status == resource.StatusCancelled })
	return s
}

// The docker engine's setup and teardown actions run in the job's
// containers around its own, after a failure, a timeout and a cancel too,
// and nothing is left on the daemon.
func TestDockerEngineSetupTeardownActions(t *testing.T) {
	d := startDockerd(t)
	dir := t.TempDir()
	engineActionsScenario(t, `    type: docker
    image: `+dockertest.Image+`
    host: `+d.Host+`
    volumes: [{name: `+dir+`, path: /trace}]`, filepath.Join(dir, "trace"), "/trace/trace")

	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := client.Filters{}.Add("label", "palvella.dev/engine=docker")
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Items)+len(vs.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left on the daemon: %d containers, %d volumes", len(cs.Items), len(vs.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The nomad engine (raw_exec driver) runs the setup and teardown actions in
// the job's allocation around its own, after a failure, a timeout and a
// cancel too, and no job is left on the agent.
func TestNomadEngineSetupTeardownActions(t *testing.T) {
	a := nomadtest.StartT(t, nomadtest.Options{})
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	engineActionsScenario(t, `    type: nomad
    driver: raw_exec
    address: `+a.Addr, trace, trace)

	deadline := time.Now().Add(30 * time.Second)
	for {
		jobs, err := a.Jobs("palvella-")
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs left on the Nomad agent: %v", jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
