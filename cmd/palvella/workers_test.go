package main

// Remote workers (`palvella worker`) against a real server: a worker
// leases through the server's API listener and runs the job on its own
// plugins; runs_on chooses the worker by its labels.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// testWorker is a `palvella worker` process.
type testWorker struct {
	t    *testing.T
	name string
	home string
	args []string
	cmd  *exec.Cmd
	logs *os.File
}

// workerToken makes a token of the role worker on s.
func workerToken(t *testing.T, s *testServer, name string) string {
	t.Helper()
	out := s.mustCLI("token", "create", name, "--role", "worker")
	return strings.TrimSpace(out)
}

// startWorker starts a worker of s named name; it stops at the test's end.
func startWorker(t *testing.T, s *testServer, token, name string, args ...string) *testWorker {
	t.Helper()
	w := &testWorker{t: t, name: name, home: t.TempDir(),
		args: append([]string{"worker", "--server", "http://" + s.addr, "--token", token, "--name", name, "--log-level", "debug", "--shutdown-grace", "1s"}, args...)}
	w.start()
	t.Cleanup(func() { w.stop(syscall.SIGTERM) })
	return w
}

func (w *testWorker) start() {
	w.t.Helper()
	logs, err := os.OpenFile(filepath.Join(w.home, "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	w.logs = logs
	w.cmd = exec.Command(palvellaBin, w.args...)
	w.cmd.Env = append(os.Environ(), "PALVELLA_HOME="+w.home)
	w.cmd.Stdout, w.cmd.Stderr = logs, logs
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	// Started once it says so (its first heartbeat reached the server).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(w.log(), "leases jobs from") {
		if time.Now().After(deadline) {
			w.t.Fatalf("worker %s did not start:\n%s", w.name, w.log())
		}
		if w.cmd.ProcessState != nil {
			w.t.Fatalf("worker %s exited:\n%s", w.name, w.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *testWorker) stop(sig syscall.Signal) {
	if w.cmd == nil || w.cmd.Process == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGCONT)
	_ = w.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
	w.cmd = nil
	w.logs.Close()
}

func (w *testWorker) log() string {
	b, _ := os.ReadFile(filepath.Join(w.home, "worker.log"))
	return string(b)
}

func (w *testWorker) logTail() string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(w.log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return "worker " + w.name + ":\n" + strings.Join(lines, "\n")
}

// A server without an embedded worker runs a pipeline on two remote
// workers: the job with runs_on {os: linux, gpu: "true"} on the worker
// labelled gpu=true only, the others on either; the gpu job reads a
// credential through the server, puts a file in storage and sets an
// output that the job below it sees, and the logs reach the server.
func TestRemoteWorkersRunARun(t *testing.T) {
	s := startServer(t, "", "--no-worker")
	s.mustCLI("credential", "set", "remote-secret", "--value", "0123456789")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("remote.yaml"))
	plain := startWorker(t, s, workerToken(t, s, "plain"), "plain")
	gpu := startWorker(t, s, workerToken(t, s, "gpu-1"), "gpu-1", "--label", "gpu=true")

	s.mustCLI("pipeline", "run", "remote")
	r := s.waitRun("remote-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run ended %s (%s):\n%s\n%s\n%s\n%s", r.Status, r.Reason, s.mustCLI("run", "get", "remote-1"), s.logTail(), plain.logTail(), gpu.logTail())
	}
	if w := r.Job("gpu").Worker; w != "gpu-1" {
		t.Errorf("the gpu job ran on %q, want gpu-1", w)
	}
	for _, j := range []string{"any", "after"} {
		if w := r.Job(j).Worker; w != "plain" && w != "gpu-1" {
			t.Errorf("job %s ran on %q, want one of the workers", j, w)
		}
	}
	logs := s.mustCLI("run", "logs", "remote-1", "--job", "gpu")
	if !strings.Contains(logs, "secret is ***") || strings.Contains(logs, "0123456789") {
		t.Errorf("the gpu job's log does not show the masked secret:\n%s", logs)
	}
	if logs := s.mustCLI("run", "logs", "remote-1", "--job", "any"); !strings.Contains(logs, "hello from Linux") {
		t.Errorf("the any job's log:\n%s", logs)
	}
}

// descendantOf reports whether pid descends from ancestor.
func descendantOf(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if pid == ancestor {
			return true
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		s := string(b)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(rest[1])
	}
	return false
}

// A worker SIGKILLed mid-job loses its leases: once they expire another
// worker runs its jobs again, as interrupted attempts that use no retry;
// every job ends once and never runs alongside itself.
func TestRemoteWorkerKilledMidJobRunsItsJobsElsewhere(t *testing.T) {
	s := startServer(t, "", "--no-worker", "--lease-ttl", "3s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	a := startWorker(t, s, workerToken(t, s, "a"), "a")
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	a.stop(syscall.SIGKILL)
	// The jobs' processes die with the worker; none runs on to its end.
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" after its worker was killed", first.pids[j]...)
	}
	b := startWorker(t, s, workerToken(t, s, "b"), "b")
	r := checkOnce(t, s, "once-1", dir)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		js := r.Job(j)
		if l.starts[j] != 2 || js.Interruptions != 1 || js.Attempt != 1 {
			t.Errorf("job %s: %d starts, %d interruptions, attempt %d; want 2 starts, 1 interruption on attempt 1 (a crash uses no retry)\n%s", j, l.starts[j], js.Interruptions, js.Attempt, b.logTail())
		}
		if js.Worker != "b" {
			t.Errorf("job %s ended on worker %q, want b", j, js.Worker)
		}
	}
}

// A worker frozen (SIGSTOP) past its leases cannot renew them: its
// engine stops the jobs' commands once the worker stops answering, before
// the leases expire and another worker runs the jobs again. When the
// frozen worker wakes, the jobs are another execution's and it records
// nothing for them.
func TestRemoteWorkerFrozenPastItsLeaseRunsNoJobTwice(t *testing.T) {
	s := startServer(t, "", "--no-worker", "--lease-ttl", "10s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	a := startWorker(t, s, workerToken(t, s, "a"), "a")
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=20")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	frozen := time.Now()
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped by the engine within its keepalive (about 4 s), well
	// before the 10 s leases (renewed every 2.5 s) can expire.
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" of the frozen worker", first.pids[j]...)
	}
	if took := time.Since(frozen); took > 7*time.Second {
		t.Errorf("the frozen worker's jobs ran on for %s; its leases could expire after 7.5 s", took)
	}
	b := startWorker(t, s, workerToken(t, s, "b"), "b")
	waitStarted(t, dir, 2, "a", "b", "c", "d")
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := s.waitRun("once-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	l := readExecLog(t, dir)
	if len(l.overlaps) > 0 {
		t.Errorf("jobs started while another execution of them was alive: %v", l.overlaps)
	}
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run ended %s (%s)\n%s\n%s", r.Status, r.Reason, a.logTail(), b.logTail())
	}
	for _, j := range []string{"a", "b", "c", "d"} {
		js := r.Job(j)
		if l.starts[j] != 2 || l.ends[j] != 1 || js.Interruptions != 1 || js.Worker != "b" {
			t.Errorf("job %s: %d starts, %d ends, %d interruptions, worker %q; want 2, 1, 1, b", j, l.starts[j], l.ends[j], js.Interruptions, js.Worker)
		}
	}
	// The woken worker goes on: it leases the next job.
	if !strings.Contains(a.log(), "job lease") {
		t.Logf("worker a's log after it woke:\n%s", a.logTail())
	}
}
