package main

// Several `palvella server` processes on one PostgreSQL database and one
// shared storage folder (docs/server.md, "Running several servers"): any
// replica serves the API, each job runs once whichever replica's worker
// leases it, triggers fire once, logs and cancellations reach the replica
// that runs the job, and a killed replica's jobs run again elsewhere, once.
// Executions are counted by the jobs themselves in a directory outside
// every replica's home.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// replicaSet is several servers sharing a database, a storage folder, the
// token and credential files and the credential key.
type replicaSet struct {
	t       *testing.T
	servers []*testServer
	shared  string
}

// startReplicas starts n servers on one new PostgreSQL database, which
// also holds their tokens and credentials (as on several machines). Each
// has a home of its own; its local engine gives every command
// PALVELLA_TEST_REPLICA=rI so that jobs can say where they ran.
func startReplicas(t *testing.T, n int, args ...string) *replicaSet {
	t.Helper()
	return startReplicasEach(t, n, func(int) []string { return args })
}

// startReplicasEach is startReplicas with the flags of each replica.
func startReplicasEach(t *testing.T, n int, args func(i int) []string) *replicaSet {
	t.Helper()
	// A server of its own, stopped at the end (this package does not stop
	// pgtest's shared one).
	dsn := pgtest.Start(t).NewDatabase(t)
	t.Setenv("PALVELLA_DATABASE_DSN", dsn)
	shared := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(shared, "secret.key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := &replicaSet{t: t, shared: shared}
	for i := range n {
		home := t.TempDir()
		conf := fmt.Sprintf(`apiVersion: palvella.dev/v1
kind: ServerConfig
database:
  plugin: database-postgres
  config:
    dsn: {from_env: PALVELLA_DATABASE_DSN}
    max_conns: 6
storage:
  plugin: storage-filesystem
  config: {root: %[1]s/storage}
authentication:
  plugin: authentication-token
  config: {dsn: {from_env: PALVELLA_DATABASE_DSN}}
credential:
  plugin: credential-builtin
  config: {dsn: {from_env: PALVELLA_DATABASE_DSN}}
engines:
  - name: local
    type: local
    default: true
    environ: {PALVELLA_TEST_REPLICA: r%[2]d}
`, shared, i)
		if err := os.WriteFile(filepath.Join(home, "palvella.yaml"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// The replicas share one management token: a loopback server
			// that finds none in its cli.json issues one and revokes the
			// others.
			shareCLIToken(t, rs.servers[0].home, home)
		}
		rs.servers = append(rs.servers, startServer(t, home, append([]string{"--secret-key-file", filepath.Join(shared, "secret.key")}, args(i)...)...))
	}
	return rs
}

// shareCLIToken copies the CLI configuration of one replica's home to
// another's; the server rewrites its URL at start.
func shareCLIToken(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(to, "cli.json"), []byte(readFile(t, filepath.Join(from, "cli.json"))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runEnded waits, through replica s, until run has ended.
func (rs *replicaSet) runEnded(s *testServer, run string) *resource.Run {
	return s.waitRun(run, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
}

func (rs *replicaSet) logTails() string {
	var b strings.Builder
	for i, s := range rs.servers {
		if s.cmd == nil {
			continue
		}
		fmt.Fprintf(&b, "--- replica r%d:\n%s\n", i, s.logTail())
	}
	return b.String()
}

// replicaExecs is what the jobs of the fanout pipeline wrote: starts and
// ends by run.job, the replicas each started on, and overlaps.
type replicaExecs struct {
	starts, ends map[string]int
	on           map[string][]string
	overlaps     []string
}

func readReplicaExecs(t *testing.T, dir string) replicaExecs {
	t.Helper()
	x := replicaExecs{starts: map[string]int{}, ends: map[string]int{}, on: map[string][]string{}}
	f, err := os.Open(filepath.Join(dir, "log"))
	if os.IsNotExist(err) {
		return x
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "START":
			x.starts[fields[1]]++
			if len(fields) > 3 {
				x.on[fields[1]] = append(x.on[fields[1]], fields[3])
			}
		case "END":
			x.ends[fields[1]]++
		case "OVERLAP":
			x.overlaps = append(x.overlaps, fields[1])
		}
	}
	return x
}

// A fan-out and fan-in pipeline run many times, each run started through
// another replica and watched through a third: every job of every run
// runs to its end exactly once, never alongside itself, and the runs
// succeed though their jobs ran on different replicas.
func TestReplicasRunEachJobOnce(t *testing.T) {
	rs := startReplicas(t, 3)
	fan := strings.Replace(readFile(t, pipelineFile("fanout.yaml")), `echo "START $id $$" >> "$DIR/log"`, `echo "START $id $$ $PALVELLA_TEST_REPLICA" >> "$DIR/log"`, 1)
	file := filepath.Join(t.TempDir(), "fanout.yaml")
	if err := os.WriteFile(file, []byte(fan), 0o644); err != nil {
		t.Fatal(err)
	}
	rs.servers[0].mustCLI("pipeline", "apply", "-f", file)
	dir := jobDir(t)
	const runs = 6
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.servers[i%3].mustCLI("pipeline", "run", "fanout", "-p", "dir="+dir, "-p", "seconds=1")
		}()
	}
	wg.Wait()
	jobs := []string{"first", "w1", "w2", "w3", "w4", "w5", "w6", "last"}
	replicasUsed := map[string]bool{}
	for n := 1; n <= runs; n++ {
		run := "fanout-" + strconv.Itoa(n)
		r := rs.runEnded(rs.servers[(n+1)%3], run)
		if r.Status != resource.StatusSuccess {
			t.Errorf("run %s ended %s (%s); want success", run, r.Status, r.Reason)
		}
		x := readReplicaExecs(t, dir)
		on := map[string]bool{}
		for _, j := range jobs {
			id := run + "." + j
			if x.starts[id] != 1 || x.ends[id] != 1 {
				t.Errorf("job %s started %d and ended %d times; want once each", id, x.starts[id], x.ends[id])
			}
			for _, rep := range x.on[id] {
				on[rep], replicasUsed[rep] = true, true
			}
		}
		t.Logf("run %s: its jobs ran on %d replicas", run, len(on))
	}
	if x := readReplicaExecs(t, dir); len(x.overlaps) > 0 {
		t.Errorf("jobs started while another execution of them was alive: %v", x.overlaps)
	}
	if len(replicasUsed) < 2 {
		t.Errorf("every job ran on one replica (%v); the test shows nothing about several", replicasUsed)
	}
	if t.Failed() {
		t.Log(rs.logTails())
	}
}

// An interval trigger of 2s with three replicas checking it fires once per
// period: one trigger record per due time, each starting one run.
func TestReplicasIntervalFiresOncePerPeriod(t *testing.T) {
	rs := startReplicas(t, 3, "--min-interval", "1s")
	dir := jobDir(t)
	p := strings.Replace(readFile(t, pipelineFile("ticker.yaml")), "DIR_PLACEHOLDER", dir, 1)
	file := filepath.Join(t.TempDir(), "ticker.yaml")
	if err := os.WriteFile(file, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	rs.servers[1].mustCLI("pipeline", "apply", "-f", file)
	time.Sleep(11 * time.Second)
	recs := rs.servers[0].records("ticker")
	byDue := map[string]int{}
	for _, rec := range recs {
		if rec.Type != "interval" || rec.Due == nil {
			continue
		}
		byDue[rec.Due.UTC().Format(time.RFC3339Nano)]++
		if rec.Outcome != resource.TriggerStarted || len(rec.Runs) != 1 {
			t.Errorf("record %s: %s, runs %v; want one run started", rec.Name, rec.Outcome, rec.Runs)
		}
	}
	for due, n := range byDue {
		if n != 1 {
			t.Errorf("due time %s fired %d times; want once", due, n)
		}
	}
	// 11s of a 2s interval: 5 due times (the first one period after apply).
	if len(byDue) < 4 || len(byDue) > 6 {
		t.Errorf("the trigger fired for %d due times in 11s of a 2s interval; want about 5: %v", len(byDue), byDue)
	}
	fired := map[string]int{}
	for _, rec := range recs {
		if rec.Type == "interval" && len(rec.Runs) == 1 {
			rs.runEnded(rs.servers[2], rec.Runs[0])
		}
	}
	for _, line := range strings.Split(readFile(t, filepath.Join(dir, "log")), "\n") {
		if run, ok := strings.CutPrefix(line, "FIRED "); ok {
			fired[run]++
		}
	}
	for _, rec := range recs {
		if rec.Type == "interval" && len(rec.Runs) == 1 && fired[rec.Runs[0]] != 1 {
			t.Errorf("run %s of due time %s ran its job %d times; want once", rec.Runs[0], rec.Due, fired[rec.Runs[0]])
		}
	}
	t.Logf("%d due times in 11s, each fired once by one of 3 replicas", len(byDue))
}

// The same webhook delivery sent to two replicas at once, and then again
// to the third, starts one run.
func TestReplicasWebhookDeliveryStartsOneRun(t *testing.T) {
	hooks := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	rs := startReplicasEach(t, 3, func(i int) []string { return []string{"--webhook-listen", hooks[i]} })
	const secret = "the secret of hooked"
	rs.servers[0].mustCLI("credential", "set", "hooked-secret", "--value", secret)
	rs.servers[1].mustCLI("pipeline", "apply", "-f", pipelineFile("hooked.yaml"))
	for round := range 5 {
		body := []byte(fmt.Sprintf(`{"round": %d}`, round))
		delivery := fmt.Sprintf("delivery-%d", round)
		replies := make([]hookReply, 2)
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[k] = hook(t, "http://"+hooks[(round+k)%3]+"/hooks/default/hooked/push", body,
					"X-Palvella-Signature-256", hmacOf(secret, body), "X-Palvella-Delivery", delivery)
			}()
		}
		wg.Wait()
		again := hook(t, "http://"+hooks[(round+2)%3]+"/hooks/default/hooked/push", body,
			"X-Palvella-Signature-256", hmacOf(secret, body), "X-Palvella-Delivery", delivery)
		started := 0
		for _, r := range append(replies, again) {
			if r.body.Outcome == resource.TriggerStarted {
				started++
			}
		}
		if started != 1 {
			t.Errorf("delivery %s sent to the three replicas: %d started a run (%+v, %+v, %+v); want 1", delivery, started, replies[0], replies[1], again)
		}
	}
	if runs := rs.servers[2].runs("hooked"); len(runs) != 5 {
		t.Errorf("5 deliveries, each sent three times, started %d runs; want 5", len(runs))
	}
}

// replicaOf returns the index of the replica whose process tree holds pid.
func (rs *replicaSet) replicaOf(pid int) int {
	for p := pid; p > 1; {
		for i, s := range rs.servers {
			if s.cmd != nil && s.cmd.Process.Pid == p {
				return i
			}
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			return -1
		}
		st := string(stat)
		rest := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
		if len(rest) < 2 {
			return -1
		}
		p, _ = strconv.Atoi(rest[1])
	}
	return -1
}

// `run logs --follow` through a replica that runs no worker sees every
// line of a job that another replica runs, in order, as the job writes
// them rather than once it has ended.
func TestReplicasFollowLogsOfAJobOnAnotherReplica(t *testing.T) {
	rs := startReplicas(t, 1, "--no-worker")
	rs.addReplica()
	a := rs.servers[0]
	a.mustCLI("pipeline", "apply", "-f", pipelineFile("chatty.yaml"))
	pidfile := filepath.Join(jobDir(t), "pid")
	a.mustCLI("pipeline", "run", "chatty", "-p", "lines=40", "-p", "pidfile="+pidfile)
	a.waitRun("chatty-1", "running", func(r *resource.Run) bool { return r.Status == resource.StatusRunning })
	if on := rs.replicaOf(waitPID(t, pidfile)); on != 1 {
		t.Fatalf("the job runs under replica %d; want the replica with a worker (1)", on)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, palvellaBin, "run", "logs", "chatty-1", "--follow", "--no-timestamps")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+a.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	type got struct {
		n  int
		at time.Time
	}
	var lines []got
	lineRE := regexp.MustCompile(`line (\d+) of 40`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := lineRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines = append(lines, got{n, time.Now()})
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run logs --follow: %v (after %d lines): %s\n%s", err, len(lines), stderr.String(), rs.logTails())
	}
	if len(lines) != 40 {
		t.Fatalf("the follower on the replica without a worker got %d lines; want 40\n%s", len(lines), rs.logTails())
	}
	for i, l := range lines {
		if l.n != i+1 {
			t.Fatalf("line %d of the follow is line %d of the job; want every line once, in order", i+1, l.n)
		}
	}
	// The job writes a line every 0.1s: a live follower has the first
	// line seconds before the last.
	if spread := lines[39].at.Sub(lines[0].at); spread < 2*time.Second {
		t.Errorf("the 40 lines, written over 4s on replica %s, reached the follower within %s of each other: it got them once the job had ended, not as they were written", rs.servers[1].addr, spread)
	}
	if r := a.run("chatty-1"); r.Status != resource.StatusSuccess {
		t.Errorf("run chatty-1 = %s", r.Status)
	}
}

// waitPID waits until a job wrote its pid to pidfile.
func waitPID(t *testing.T, pidfile string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job wrote its pid to %s", pidfile)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addReplica starts one more server on the set's database and shared
// files.
func (rs *replicaSet) addReplica(args ...string) *testServer {
	rs.t.Helper()
	first := rs.servers[0]
	home := rs.t.TempDir()
	conf := strings.Replace(readFile(rs.t, filepath.Join(first.home, "palvella.yaml")), "PALVELLA_TEST_REPLICA: r0", fmt.Sprintf("PALVELLA_TEST_REPLICA: r%d", len(rs.servers)), 1)
	if err := os.WriteFile(filepath.Join(home, "palvella.yaml"), []byte(conf), 0o600); err != nil {
		rs.t.Fatal(err)
	}
	shareCLIToken(rs.t, first.home, home)
	s := startServer(rs.t, home, append([]string{"--secret-key-file", filepath.Join(rs.shared, "secret.key")}, args...)...)
	rs.servers = append(rs.servers, s)
	return s
}

// A run cancelled through a replica that runs no worker stops its job on
// the replica that runs it: the job's process is gone within seconds.
func TestReplicasCancelStopsAJobOnAnotherReplica(t *testing.T) {
	rs := startReplicas(t, 1, "--no-worker")
	rs.addReplica()
	a := rs.servers[0]
	a.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	pidfile := filepath.Join(jobDir(t), "pid")
	a.mustCLI("pipeline", "run", "sleepy", "-p", "seconds=60", "-p", "pidfile="+pidfile)
	pid := waitPID(t, pidfile)
	if on := rs.replicaOf(pid); on != 1 {
		t.Fatalf("the job runs under replica %d; want the replica with a worker (1)", on)
	}
	a.mustCLI("run", "cancel", "sleepy-1")
	start := time.Now()
	for alive(pid) && !zombie(pid) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the job's process still runs on the other replica 10s after the cancel:\n%s", rs.logTails())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the job on the other replica stopped %s after the cancel", time.Since(start).Round(10*time.Millisecond))
	r := rs.runEnded(rs.servers[1], "sleepy-1")
	if r.Status != resource.StatusCancelled || r.Job("nap").Status != resource.StatusCancelled {
		t.Errorf("run %s, job %s; want both cancelled", r.Status, r.Job("nap").Status)
	}
}

// SIGKILL of the replica running jobs: they run again (an interrupted
// attempt, not a retry) on the replicas left, once each, and never while
// the killed execution was alive.
func TestReplicasKilledReplicaJobsRunOnceElsewhere(t *testing.T) {
	rs := startReplicas(t, 3, "--lease-ttl", "3s", "--workers", "2")
	s0 := rs.servers[0]
	s0.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s0.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	on := map[string]int{}
	for _, j := range []string{"a", "b", "c", "d"} {
		on[j] = rs.replicaOf(first.pids[j][0])
	}
	victim := on["a"]
	if victim < 0 {
		t.Fatalf("job a's process %d is under no replica", first.pids["a"][0])
	}
	t.Logf("jobs ran on replicas %v; killing replica %d", on, victim)
	rs.servers[victim].stop(syscall.SIGKILL)
	for _, j := range []string{"a", "b", "c", "d"} {
		if on[j] == victim {
			waitGone(t, "job "+j+" after its replica was killed", first.pids[j]...)
		}
	}
	other := rs.servers[(victim+1)%3]
	r := checkOnce(t, other, "once-1", dir)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		want := 1
		if on[j] == victim {
			want = 2
		}
		if l.starts[j] != want {
			t.Errorf("job %s (on replica %d) started %d times; want %d", j, on[j], l.starts[j], want)
		}
		if js := r.Job(j); js.Attempt != 1 || js.Interruptions != want-1 {
			t.Errorf("job %s: attempt %d, %d interruptions; want attempt 1 and %d", j, js.Attempt, js.Interruptions, want-1)
		}
	}
	if l.starts["a"] == 2 {
		if again := rs.replicaOf(l.pids["a"][1]); again == victim {
			t.Errorf("job a ran again under the killed replica")
		}
	}
}
