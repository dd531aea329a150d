package main

// Remote workers (`palvella worker`) against a real server: a worker
// leases through the server's API listener and runs the job on its own
// plugins; runs_on chooses the worker by its labels.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
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

// A worker running several jobs of one run stores each job's files
// while the run's other jobs end: a storage call never goes out on the
// claim of a job that has just ended (the server would refuse it).
// Five runs of twelve jobs that end together, on one worker with four
// slots.
func TestRemoteWorkerStoresFilesWhileOtherJobsOfTheRunEnd(t *testing.T) {
	s := startServer(t, "", "--no-worker")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("remote-store.yaml"))
	w := startWorker(t, s, workerToken(t, s, "w"), "w", "--workers", "4")
	for i := 1; i <= 5; i++ {
		s.mustCLI("pipeline", "run", "remote-store")
	}
	for i := 1; i <= 5; i++ {
		name := "remote-store-" + strconv.Itoa(i)
		r := s.waitRun(name, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		if r.Status != resource.StatusSuccess {
			t.Fatalf("run %s ended %s (%s):\n%s\n%s", name, r.Status, r.Reason, s.mustCLI("run", "get", name), w.logTail())
		}
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

// workerMetric reads one line of /metrics.
func workerMetric(t *testing.T, s *testServer, prefix string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.adminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// worker list shows a worker's labels, running jobs and heartbeat; a
// drained worker finishes its running jobs and leases no more until the
// drain is undone; /metrics shows the jobs per worker and the age of
// their leases; a worker's token reaches no API route.
func TestRemoteWorkerListDrainAndMetrics(t *testing.T) {
	s := startServer(t, "", "--no-worker")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	token := workerToken(t, s, "w1")
	w := startWorker(t, s, token, "w1", "--label", "zone=b")
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	waitStarted(t, dir, 1, "a", "b", "c", "d")

	// The heartbeat (every 5 s) says which jobs run.
	var list []resource.Worker
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := json.Unmarshal([]byte(s.mustCLI("worker", "list", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && len(list[0].Status.Jobs) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker list never showed w1 with its 4 jobs: %+v", list)
		}
		time.Sleep(250 * time.Millisecond)
	}
	got := list[0]
	if got.Name != "w1" || got.Status.Labels["os"] != runtime.GOOS || got.Status.Labels["arch"] != runtime.GOARCH ||
		got.Status.Labels["platform"] != runtime.GOOS+"/"+runtime.GOARCH || got.Status.Labels["zone"] != "b" || got.Status.Capacity != 4 || got.Status.Identity != "w1" {
		t.Errorf("worker list -o json: %+v", got)
	}
	table := s.mustCLI("worker", "list")
	for _, want := range []string{"w1", "ready", "4/4", "zone=b", "ago"} {
		if !strings.Contains(table, want) {
			t.Errorf("worker list does not say %q:\n%s", want, table)
		}
	}
	if l := workerMetric(t, s, `palvella_worker_jobs{worker="w1"}`); l != `palvella_worker_jobs{worker="w1"} 4` {
		t.Errorf("/metrics: %q, want palvella_worker_jobs{worker=\"w1\"} 4", l)
	}
	if l := workerMetric(t, s, `palvella_worker_lease_age_seconds{worker="w1"}`); l == "" {
		t.Errorf("/metrics has no lease age of w1")
	}
	if l := workerMetric(t, s, `palvella_jobs_queued`); l == "" {
		t.Errorf("/metrics has no queue depth")
	}

	// A worker's token reaches no API route.
	if _, errOut, code := s.cli("run", "list", "--token", token); code == 0 || !strings.Contains(errOut, "permission") {
		t.Errorf("run list with a worker's token: exit %d, %s; want refused", code, errOut)
	}

	out := s.mustCLI("worker", "drain", "w1")
	if !strings.Contains(out, "drained") {
		t.Errorf("worker drain said %q", out)
	}
	// The running jobs finish, the one below them is not leased.
	s.waitRun("once-1", "waiting for the drained worker", func(r *resource.Run) bool {
		return r.Job("a").Status == resource.StatusSuccess && r.Job("d").Status == resource.StatusSuccess
	})
	time.Sleep(2 * time.Second)
	if r := s.run("once-1"); r.Job("after").Status != resource.StatusQueued {
		t.Fatalf("job after is %s under a drained worker, want queued\n%s", r.Job("after").Status, w.logTail())
	}
	if table := s.mustCLI("worker", "list"); !strings.Contains(table, "drained") {
		t.Errorf("worker list does not say drained:\n%s", table)
	}
	s.mustCLI("worker", "drain", "w1", "--undo")
	checkOnce(t, s, "once-1", dir)
	if _, errOut, code := s.cli("worker", "drain", "nobody"); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Errorf("drain of an unknown worker: exit %d, %s", code, errOut)
	}
}

// Over TLS the worker trusts the server's certificate through --ca-cert,
// and refuses it without.
func TestRemoteWorkerOverTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := &testServer{t: t, home: t.TempDir(), addr: freeAddr(t)}
	t.Setenv(CACertEnv, certFile)
	logs, err := os.Create(filepath.Join(s.home, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.logs = logs
	s.cmd = exec.Command(palvellaBin, "server", "--listen", s.addr, "--no-worker", "--tls-cert", certFile, "--tls-key", keyFile, "--webhook-listen", "off", "--shutdown-grace", "1s")
	s.cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	s.cmd.Stdout, s.cmd.Stderr = logs, logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get("https://" + s.addr + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the TLS server did not answer:\n%s", s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("remote.yaml"))
	s.mustCLI("credential", "set", "remote-secret", "--value", "0123456789")
	token := workerToken(t, s, "secure")
	url := "https://" + s.addr

	// Without the CA the worker cannot trust the server.
	bad := exec.Command(palvellaBin, "worker", "--server", url, "--token", token, "--name", "untrusting")
	bad.Env = append(os.Environ(), "PALVELLA_HOME="+t.TempDir(), CACertEnv+"=")
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Errorf("a worker without the CA: %v\n%s", err, out)
	}
	// Nor does a worker speak plain HTTP to a server beyond loopback.
	plain := exec.Command(palvellaBin, "worker", "--server", "http://192.0.2.1:7700", "--token", token)
	if out, err := plain.CombinedOutput(); err == nil || !strings.Contains(string(out), "in the clear") {
		t.Errorf("a worker over plain HTTP beyond loopback: %v\n%s", err, out)
	}

	w := &testWorker{t: t, name: "secure", home: t.TempDir(),
		args: []string{"worker", "--server", url, "--token", token, "--name", "secure", "--ca-cert", certFile, "--label", "gpu=true"}}
	w.start()
	t.Cleanup(func() { w.stop(syscall.SIGTERM) })
	s.mustCLI("pipeline", "run", "remote")
	r := s.waitRun("remote-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run over TLS ended %s (%s)\n%s", r.Status, r.Reason, w.logTail())
	}
}

// A worker cut off from its server (the server frozen with SIGSTOP)
// cannot renew its leases: it stops its jobs after half the lease, before
// they could pass to another worker, and runs them again once the server
// is back, as interrupted attempts.
func TestRemoteWorkerCutOffFromTheServerStopsItsJobs(t *testing.T) {
	s := startServer(t, "", "--no-worker", "--lease-ttl", "4s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	w := startWorker(t, s, workerToken(t, s, "w"), "w")
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=8")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" of a worker cut off from its server", first.pids[j]...)
	}
	// Half the 4 s lease, plus the renewal period and the engine's stop.
	if took := time.Since(cut); took > 4*time.Second {
		t.Errorf("the jobs ran on for %s without their leases renewed; the leases expire within 4 s", took)
	}
	if l := readExecLog(t, dir); len(l.ends) != 0 {
		t.Fatalf("jobs ended while their server was cut off: %+v", l)
	}
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := checkOnce(t, s, "once-1", dir)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		if js := r.Job(j); l.starts[j] != 2 || js.Interruptions != 1 || js.Attempt != 1 {
			t.Errorf("job %s: %d starts, %d interruptions, attempt %d; want 2, 1, 1\n%s", j, l.starts[j], js.Interruptions, js.Attempt, w.logTail())
		}
	}
	if !strings.Contains(w.log(), "could not be renewed through the server") {
		t.Errorf("the worker's log does not say it stopped the jobs for their leases:\n%s", w.logTail())
	}
}

// Three replicas on PostgreSQL without embedded workers, and two remote
// workers each talking to a different replica, the run started through the
// third: the jobs run on both workers, and those of the worker SIGKILLed
// mid-job run again on the other, once each.
func TestRemoteWorkersOnReplicasOverPostgres(t *testing.T) {
	rs := startReplicas(t, 3, "--no-worker", "--lease-ttl", "3s")
	s0, s1, s2 := rs.servers[0], rs.servers[1], rs.servers[2]
	s2.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	a := startWorker(t, s0, workerToken(t, s2, "a"), "a", "--workers", "2")
	b := startWorker(t, s1, workerToken(t, s2, "b"), "b", "--workers", "2")
	dir := jobDir(t)
	s2.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	// Which jobs worker a runs: their shells descend from it.
	var onA []string
	for _, j := range []string{"a", "b", "c", "d"} {
		if descendantOf(first.pids[j][0], a.cmd.Process.Pid) {
			onA = append(onA, j)
		}
	}
	if len(onA) != 2 {
		t.Fatalf("worker a (2 at once) runs jobs %v of a, b, c, d; want two", onA)
	}
	a.stop(syscall.SIGKILL)
	r := checkOnce(t, s2, "once-1", dir)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		js := r.Job(j)
		want := 1
		if slices.Contains(onA, j) {
			want = 2
		}
		if l.starts[j] != want || js.Interruptions != want-1 || js.Worker != "b" && want == 2 {
			t.Errorf("job %s: %d starts, %d interruptions, last on %q; want %d starts (a's jobs again on b)\n%s\n%s", j, l.starts[j], js.Interruptions, js.Worker, want, b.logTail(), rs.logTails())
		}
	}
}

// The log of a job on a remote worker reaches a follower on the server as
// the job writes it, every line once and in order.
func TestRemoteWorkerLogsAreFollowedLive(t *testing.T) {
	s := startServer(t, "", "--no-worker")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("chatty.yaml"))
	startWorker(t, s, workerToken(t, s, "w"), "w")
	pidfile := filepath.Join(jobDir(t), "pid")
	s.mustCLI("pipeline", "run", "chatty", "-p", "lines=40", "-p", "pidfile="+pidfile)
	s.waitRun("chatty-1", "running", func(r *resource.Run) bool { return r.Status == resource.StatusRunning })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, palvellaBin, "run", "logs", "chatty-1", "--follow", "--no-timestamps")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var ns []int
	var first, last time.Time
	lineRE := regexp.MustCompile(`line (\d+) of 40`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := lineRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			ns = append(ns, n)
			if first.IsZero() {
				first = time.Now()
			}
			last = time.Now()
		}
	}
	_ = cmd.Wait()
	if len(ns) != 40 {
		t.Fatalf("the follower got %d lines; want 40: %v", len(ns), ns)
	}
	for i, n := range ns {
		if n != i+1 {
			t.Fatalf("line %d of the follow is line %d of the job; want every line once, in order", i+1, n)
		}
	}
	if spread := last.Sub(first); spread < 2*time.Second {
		t.Errorf("the 40 lines written over 4 s on the worker reached the follower within %s: not as they were written", spread)
	}
}
