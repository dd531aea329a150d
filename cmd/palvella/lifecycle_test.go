package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

func pipelineFile(name string) string { return filepath.Join("testdata", "pipelines", name) }

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCancelRunKillsItsCommands(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	pidfile := filepath.Join(jobDir(t), "pid")
	s.mustCLI("pipeline", "run", "sleepy", "-p", "pidfile="+pidfile)
	pid := readPID(t, pidfile)
	if !alive(pid) {
		t.Fatalf("the job's sleep (%d) is not running", pid)
	}
	s.mustCLI("run", "cancel", "sleepy-1")
	r := s.waitRun("sleepy-1", "cancelled", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusCancelled || r.Job("nap").Status != resource.StatusCancelled {
		t.Fatalf("run %s, job %s; want both cancelled", r.Status, r.Job("nap").Status)
	}
	time.Sleep(500 * time.Millisecond) // the worker's own record of the action comes after
	if a := s.run("sleepy-1").Job("nap").Action("sleep"); a.Status != resource.StatusCancelled {
		t.Errorf("the running action of a cancelled run is %s (%q), want cancelled", a.Status, a.Message)
	}
	if r.Reason == "" {
		t.Errorf("the cancelled run has no reason")
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the job's sleep (%d) still runs after cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, errOut, code := s.cli("run", "cancel", "sleepy-1"); code == 0 || !strings.Contains(errOut, "already ended") {
		t.Fatalf("second cancel: exit %d, %s", code, errOut)
	}
}

func TestTimeouts(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("timeouts.yaml"))
	s.cli("pipeline", "run", "timeouts", "--wait")
	r := s.run("timeouts-1")
	if r.Status != resource.StatusFailure {
		t.Fatalf("run = %s", r.Status)
	}
	if j := r.Job("job-timeout"); j.Status != resource.StatusFailure || !strings.Contains(j.Reason, "timed out after 1s") {
		t.Errorf("job timeout: %s %q", j.Status, j.Reason)
	}
	j := r.Job("action-timeout")
	if a := j.Action("sleep"); a.Status != resource.StatusFailure || !strings.Contains(a.Message, "timed out after 1s") {
		t.Errorf("action timeout: %s %q", a.Status, a.Message)
	}
	if a := j.Action("never"); a.Status != resource.StatusSkipped {
		t.Errorf("action after a timed-out one = %s, want skipped", a.Status)
	}
	if r.FinishedAt.Sub(*r.StartedAt) > 20*time.Second {
		t.Errorf("the run took %s; the timeouts did not stop the sleeps", r.FinishedAt.Sub(*r.StartedAt))
	}
}

func TestRetries(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("flaky.yaml"))
	counter := filepath.Join(jobDir(t), "counter")
	s.cli("pipeline", "run", "flaky", "-p", "counter="+counter, "--wait")
	r := s.run("flaky-1")
	lucky := r.Job("third-time-lucky")
	if lucky.Status != resource.StatusSuccess || lucky.Attempt != 3 {
		t.Errorf("third-time-lucky: %s after %d attempts, want success after 3", lucky.Status, lucky.Attempt)
	}
	never := r.Job("never-lucky")
	if never.Status != resource.StatusFailure || never.Attempt != 2 {
		t.Errorf("never-lucky: %s after %d attempts, want failure after 2 (1 retry)", never.Status, never.Attempt)
	}
	retried := 0
	for _, tr := range never.Transitions {
		if tr.Status == resource.StatusQueued && strings.Contains(tr.Reason, "retrying") {
			retried++
		}
	}
	if retried != 1 {
		t.Errorf("never-lucky transitions record %d retries, want 1: %+v", retried, never.Transitions)
	}
	// The stored log is the last attempt's: a retry clears what the
	// attempts before it wrote (a first execution has nothing to clear).
	if logs := s.mustCLI("run", "logs", "flaky-1", "--job", "third-time-lucky"); !strings.Contains(logs, "attempt 3") || strings.Contains(logs, "attempt 1") || strings.Contains(logs, "attempt 2") || strings.Contains(logs, "filler") {
		t.Errorf("the log of third-time-lucky after 3 attempts (%d bytes):\n%.400s\nwant the third attempt's only", len(logs), logs)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("one-at-a-time.yaml"))
	s.mustCLI("pipeline", "run", "one-at-a-time")
	s.mustCLI("pipeline", "run", "one-at-a-time")
	// While the first runs, the second waits.
	if first := s.run("one-at-a-time-1"); !first.Status.Terminal() {
		if r := s.run("one-at-a-time-2"); r.Status != resource.StatusPending || !strings.Contains(r.Reason, "waiting for one of the 1 runs") {
			if first = s.run("one-at-a-time-1"); !first.Status.Terminal() {
				t.Fatalf("second run while the first runs: %s %q, want pending", r.Status, r.Reason)
			}
		}
	}
	first := s.waitRun("one-at-a-time-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	second := s.waitRun("one-at-a-time-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if first.Status != resource.StatusSuccess || second.Status != resource.StatusSuccess {
		t.Fatalf("runs: %s, %s", first.Status, second.Status)
	}
	if second.StartedAt.Before(*first.FinishedAt) {
		t.Fatalf("the second run started at %s, before the first ended at %s", second.StartedAt, first.FinishedAt)
	}
}

func TestServerKilledMidRunPicksItUp(t *testing.T) {
	home := t.TempDir()
	s := startServer(t, home)
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	pidfile := filepath.Join(jobDir(t), "pid")
	s.mustCLI("pipeline", "run", "sleepy", "-p", "seconds=2", "-p", "pidfile="+pidfile)
	readPID(t, pidfile)
	s.stop(syscall.SIGKILL)

	s.start()
	r := s.waitRun("sleepy-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("after the restart the run ended %s (%s); want success", r.Status, r.Reason)
	}
	nap := r.Job("nap")
	picked := false
	for _, tr := range nap.Transitions {
		if strings.Contains(tr.Reason, "picked up again") {
			picked = true
		}
	}
	if !picked {
		t.Errorf("the job's transitions do not record that it was picked up again: %+v", nap.Transitions)
	}
	// Nothing is left running.
	var runs []resource.Run
	if err := json.Unmarshal([]byte(s.mustCLI("run", "list", "-o", "json")), &runs); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if !r.Status.Terminal() {
			t.Errorf("run %s is still %s after recovery", r.Name, r.Status)
		}
	}
}
