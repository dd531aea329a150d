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
)

// startDockerd starts a Docker daemon of the test's own (dockertest),
// stopped when the test ends.
func startDockerd(t *testing.T) *dockertest.Daemon {
	t.Helper()
	d, err := dockertest.Start()
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// A server whose configuration names a docker engine runs jobs in
// containers of its image on a real Docker daemon: the engine's setup and
// teardown actions run in the job's containers around its own, a file one
// job stores is in the next job's workspace, an inline
// `engine: {type: docker, image: ...}` works too, an absent image fails
// its job saying so, and nothing is left on the daemon afterwards.
func TestDockerEngineRunsAPipeline(t *testing.T) {
	d := startDockerd(t)
	home := t.TempDir()
	conf := configHead + `plugins:
  engine-docker:
    config: {host: ` + d.Host + `}
engines:
  - name: local
    type: local
    default: true
  - name: box
    type: docker
    image: ` + dockertest.Image + `
    host: ` + d.Host + `
    environ: {WHERE: box}
    setup:
      actions:
        - name: prepare
          run: test -f /.dockerenv && echo "setup in a container at $(pwd)" && echo prepared > prepared.txt
    teardown:
      actions:
        - name: clean
          run: test -f /.dockerenv && echo "teardown saw $(cat prepared.txt)"
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, home)
	pipeline := filepath.Join(t.TempDir(), "boxed.yaml")
	if err := os.WriteFile(pipeline, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: boxed}
spec:
  jobs:
    - name: make
      engine: box
      storage: {put: [out/result.txt]}
      actions:
        - name: build
          run: |
            test -f /.dockerenv
            mkdir out && echo "built on $WHERE by $(id -u)" > out/result.txt
            echo "made it"
    - name: use
      requires: [make]
      engine: {type: docker, image: "`+dockertest.Image+`"}
      storage: {get: [out/result.txt]}
      actions:
        - name: show
          run: test -f /.dockerenv && cat out/result.txt
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", pipeline)
	s.mustCLI("pipeline", "run", "boxed", "--wait")
	r := s.run("boxed-1")
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run boxed-1 is %s:\n%s\n%s", r.Status, s.mustCLI("run", "get", "boxed-1"), s.logTail())
	}
	for _, a := range [][2]string{{"make", "setup:prepare"}, {"make", "build"}, {"make", "teardown:clean"}, {"use", "show"}} {
		if st := actionOf(t, r, a[0], a[1]).Status; st != resource.StatusSuccess {
			t.Errorf("%s/%s = %s", a[0], a[1], st)
		}
	}
	// The write that started job use recorded its action running too; the
	// action's recorded start is still its own, after the engine made the
	// job's container and copied the stored file in.
	use, show := r.Job("use"), actionOf(t, r, "use", "show")
	if use.StartedAt == nil || show.StartedAt == nil || show.FinishedAt == nil ||
		show.StartedAt.Sub(*use.StartedAt) < 20*time.Millisecond || show.FinishedAt.Before(*show.StartedAt) {
		t.Errorf("job use started at %v, its action ran from %v to %v: want the action's start after the container was made", use.StartedAt, show.StartedAt, show.FinishedAt)
	}
	var logs []string
	s.runLogs("boxed-1", func(l storedLine) { logs = append(logs, l.text) })
	all := strings.Join(logs, "\n")
	for _, want := range []string{"setup in a container at /palvella/ws/", "made it", "teardown saw prepared", "built on box by 0"} {
		if !strings.Contains(all, want) {
			t.Errorf("the run's logs lack %q:\n%s", want, all)
		}
	}

	// An image the daemon lacks and cannot pull fails the job, saying so.
	absent := filepath.Join(t.TempDir(), "absent.yaml")
	if err := os.WriteFile(absent, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: absent}
spec:
  jobs:
    - name: nope
      engine: {type: docker, image: "palvella-test/absent:1"}
      actions:
        - {name: x, run: "true"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", absent)

	// A pipeline's inline engine cannot reach beyond its job: a host
	// folder to mount, another daemon or the host's network are the
	// administrator's, in a named engine.
	escape := filepath.Join(t.TempDir(), "escape.yaml")
	if err := os.WriteFile(escape, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: escape}
spec:
  jobs:
    - name: grab
      engine:
        type: docker
        image: "`+dockertest.Image+`"
        volumes: [{name: /, path: /host}]
        network: host
      actions:
        - {name: x, run: "ls /host"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.cli("pipeline", "apply", "-f", escape)
	for _, want := range []string{"escape.yaml:7: spec.jobs[0].engine: a pipeline cannot set network of engine type docker", "a pipeline cannot set volumes of engine type docker"} {
		if code == 0 || !strings.Contains(out+errOut, want) {
			t.Errorf("apply of an inline engine mounting the host: exit %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	s.cli("pipeline", "run", "absent", "--wait")
	ra := s.run("absent-1")
	j := ra.Job("nope")
	if ra.Status != resource.StatusFailure || j == nil || !strings.Contains(j.Reason, `image "palvella-test/absent:1" is not on the Docker daemon`) ||
		!strings.Contains(j.Reason, "could not be pulled") {
		t.Fatalf("run with an absent image: %s, job %+v", ra.Status, j)
	}

	// Nothing of the jobs is left on the daemon, once the engine has
	// removed what Teardown leaves to the background.
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := client.Filters{}.Add("label", "palvella.dev/engine=docker")
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Items)+len(vs.Items)+len(ns.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left on the daemon 30 s after the runs: %d containers, %d volumes, %d networks", len(cs.Items), len(vs.Items), len(ns.Items))
		}
	}
}
