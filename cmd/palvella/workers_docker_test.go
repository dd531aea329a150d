package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// A worker frozen (SIGSTOP) past its lease while its job runs in a
// container: the docker engine stops the job's command once the worker
// stops answering, before the lease expires and another worker runs the
// job again; the job then ends once, on the other worker. Without the
// engine's keepalive the frozen worker's command ran on in its container
// while the other worker ran the job.
func TestRemoteWorkerFrozenWithDockerEngineRunsNoJobTwice(t *testing.T) {
	d := startDockerd(t)
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := jobDir(t)
	home := t.TempDir()
	conf := configHead + `engines:
  - name: box
    type: docker
    default: true
    image: ` + dockertest.Image + `
    host: ` + d.Host + `
    volumes: [{name: ` + dir + `, path: /out}]
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	workerConf := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(workerConf, []byte(configHead+"plugins:\n  engine-docker:\n    config: {host: "+d.Host+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pipeline := filepath.Join(t.TempDir(), "boxed.yaml")
	if err := os.WriteFile(pipeline, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: boxed}
spec:
  jobs:
    - name: work
      actions:
        - name: work
          run: |
            echo "START $(hostname)" >> /out/log
            sleep 20
            echo "END $(hostname)" >> /out/log
`), 0o600); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, home, "--no-worker", "--lease-ttl", "10s")
	s.mustCLI("pipeline", "apply", "-f", pipeline)
	a := startWorker(t, s, workerToken(t, s, "a"), "a", "--config", workerConf)
	s.mustCLI("pipeline", "run", "boxed")
	lines := func(prefix string) int {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return strings.Count(string(b), prefix)
	}
	waitFor(t, "the job's first start", func() bool { return lines("START") == 1 })
	// sleeps lists the job's sleep in the daemon's running containers.
	sleeps := func() []string {
		ctx := context.Background()
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, x := range cs.Items {
			top, err := c.ContainerTop(ctx, x.ID, client.ContainerTopOptions{})
			if err != nil {
				continue // stopped while listed
			}
			for _, p := range top.Processes {
				if len(p) > 0 && p[len(p)-1] == "sleep 20" {
					found = append(found, x.ID[:12])
				}
			}
		}
		return found
	}
	// START comes before the sleep has started.
	waitFor(t, "the job's sleep before the freeze", func() bool { return len(sleeps()) == 1 })

	frozen := time.Now()
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the frozen worker's command to stop", func() bool { return len(sleeps()) == 0 })
	took := time.Since(frozen)
	t.Logf("the frozen worker's command stopped %s after it froze", took.Round(time.Millisecond))
	if took > 7*time.Second {
		t.Errorf("the frozen worker's command ran on for %s; its lease could expire after 7.5 s", took)
	}

	b := startWorker(t, s, workerToken(t, s, "b"), "b", "--config", workerConf)
	waitFor(t, "the job's second start", func() bool { return lines("START") == 2 })
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := s.waitRun("boxed-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run ended %s (%s)\n%s\njob's log:\n%s\n%s\n%s", r.Status, r.Reason, s.mustCLI("run", "get", "boxed-1"), log, a.logTail(), b.logTail())
	}
	if js := r.Job("work"); lines("START") != 2 || lines("END") != 1 || js.Interruptions != 1 || js.Worker != "b" {
		t.Errorf("job: %d interruptions, worker %q, log:\n%s\nwant 2 starts, 1 end, 1 interruption, worker b", js.Interruptions, js.Worker, log)
	}
}
