package main

// Fault-injection tests of the run engine's promises, against the real
// binary: every job runs to the end exactly once at a time, whatever is
// killed, stopped or frozen under it. Executions are counted in a
// directory outside PALVELLA_HOME, by the jobs themselves.

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// execLog is what the jobs of testdata/pipelines/once.yaml wrote.
type execLog struct {
	starts, ends map[string]int
	overlaps     []string
	pids         map[string][]int // every pid that started the job
}

func readExecLog(t *testing.T, dir string) execLog {
	t.Helper()
	l := execLog{starts: map[string]int{}, ends: map[string]int{}, pids: map[string][]int{}}
	f, err := os.Open(filepath.Join(dir, "log"))
	if os.IsNotExist(err) {
		return l
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
			l.starts[fields[1]]++
			if len(fields) > 2 {
				pid, _ := strconv.Atoi(fields[2])
				l.pids[fields[1]] = append(l.pids[fields[1]], pid)
			}
		case "END":
			l.ends[fields[1]]++
		case "OVERLAP":
			l.overlaps = append(l.overlaps, fields[1])
		}
	}
	return l
}

// waitStarted waits until each of jobs has started at least n times.
func waitStarted(t *testing.T, dir string, n int, jobs ...string) execLog {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := readExecLog(t, dir)
		ok := true
		for _, j := range jobs {
			if l.starts[j] < n {
				ok = false
			}
		}
		if ok {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %v did not all start %d times: %+v", jobs, n, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until none of pids runs.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) && !zombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: process %d still runs", what, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// pluginPID finds the process of a builtin plugin started by the server.
func pluginPID(t *testing.T, serverPID int, name string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil || !strings.Contains(string(cmdline), "plugin\x00serve\x00"+name+"\x00") {
				continue
			}
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			s := string(stat)
			rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(rest) > 1 && rest[1] == strconv.Itoa(serverPID) && !zombie(pid) {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s plugin process under the server (%d)", name, serverPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce checks that every job of the once pipeline ran to its end
// exactly once and never alongside another execution of itself.
func checkOnce(t *testing.T, s *testServer, run, dir string) *resource.Run {
	t.Helper()
	r := s.waitRun(run, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	l := readExecLog(t, dir)
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s ended %s (%s); want success\n%s", run, r.Status, r.Reason, s.logTail())
	}
	if len(l.overlaps) > 0 {
		t.Errorf("jobs started while another execution of them was alive: %v", l.overlaps)
	}
	for _, j := range []string{"a", "b", "c", "d", "after"} {
		if l.ends[j] != 1 {
			t.Errorf("job %s ended %d times, want exactly 1 (log: %+v)", j, l.ends[j], l)
		}
	}
	return r
}

func TestServerKilledMidJobRunsEachJobOnce(t *testing.T) {
	home := t.TempDir()
	s := startServer(t, home, "--lease-ttl", "3s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	s.stop(syscall.SIGKILL)
	// The jobs' processes die with the server; none runs on to its end.
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" after the server was killed", first.pids[j]...)
	}

	s.start("--lease-ttl", "3s")
	r := checkOnce(t, s, "once-1", dir)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		if l.starts[j] != 2 {
			t.Errorf("job %s started %d times; want 2 (killed, then run again)", j, l.starts[j])
		}
		js := r.Job(j)
		if js.Interruptions != 1 || js.Attempt != 1 {
			t.Errorf("job %s: %d interruptions, attempt %d; want 1 interruption on attempt 1 (a crash uses no retry)", j, js.Interruptions, js.Attempt)
		}
	}
}

func TestEnginePluginKilledMidJobRunsItAgain(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=3")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	engine := pluginPID(t, s.cmd.Process.Pid, "engine-local")
	if err := syscall.Kill(engine, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" after its engine was killed", first.pids[j]...)
	}
	r := checkOnce(t, s, "once-1", dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		js := r.Job(j)
		if js.Interruptions != 1 || js.Attempt != 1 {
			t.Errorf("job %s: %d interruptions, attempt %d; want 1 interruption on attempt 1", j, js.Interruptions, js.Attempt)
		}
		found := false
		for _, tr := range js.Transitions {
			if tr.Status == resource.StatusQueued && strings.Contains(tr.Reason, "interrupted") && strings.Contains(tr.Reason, "engine") {
				found = true
			}
		}
		if !found {
			t.Errorf("job %s's transitions do not say the engine's stop interrupted it: %+v", j, js.Transitions)
		}
	}
}

func TestSIGTERMLetsRunningJobsFinish(t *testing.T) {
	home := t.TempDir()
	s := startServer(t, home, "--shutdown-grace", "20s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=2")
	waitStarted(t, dir, 1, "a", "b", "c", "d")
	s.stop(syscall.SIGTERM)
	l := readExecLog(t, dir)
	for _, j := range []string{"a", "b", "c", "d"} {
		if l.ends[j] != 1 {
			t.Errorf("job %s did not finish within the grace: %+v", j, l)
		}
	}
	if l.ends["after"] != 0 {
		t.Errorf("a job was started after SIGTERM: %+v", l)
	}
	s.start()
	r := checkOnce(t, s, "once-1", dir)
	for _, j := range r.Jobs {
		if j.Status == resource.StatusCancelled || j.Status == resource.StatusSkipped {
			t.Errorf("job %s ended %s after a graceful stop", j.Name, j.Status)
		}
	}
}

func TestSIGTERMPastTheGraceHandsJobsBack(t *testing.T) {
	home := t.TempDir()
	s := startServer(t, home, "--shutdown-grace", "1s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=4")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	s.stop(syscall.SIGTERM)
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" after the grace", first.pids[j]...)
	}
	if l := readExecLog(t, dir); len(l.ends) != 0 {
		t.Fatalf("jobs ended though the grace was shorter than they take: %+v", l)
	}
	s.start()
	r := checkOnce(t, s, "once-1", dir)
	if r.Reason == "" {
		t.Errorf("the run's reason is empty")
	}
	for _, j := range []string{"a", "b", "c", "d"} {
		js := r.Job(j)
		if js.Attempt != 1 {
			t.Errorf("job %s is on attempt %d; a stop of the server uses no retry", j, js.Attempt)
		}
		handed := false
		for _, tr := range js.Transitions {
			if tr.Status == resource.StatusQueued && strings.Contains(tr.Reason, "server stopped") {
				handed = true
			}
		}
		if !handed {
			t.Errorf("job %s's transitions do not say it was handed back: %+v", j, js.Transitions)
		}
	}
}

// Freezing the database plugin (SIGSTOP) past half the lease makes the
// worker stop its job before the lease can expire; once the database is
// back, the job runs again, never alongside the stopped execution.
func TestLeaseLostStopsTheJobBeforeAnotherTakesIt(t *testing.T) {
	s := startServer(t, "", "--lease-ttl", "4s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=6")
	first := waitStarted(t, dir, 1, "a", "b", "c", "d")
	db := pluginPID(t, s.cmd.Process.Pid, "database-sqlite")
	if err := syscall.Kill(db, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Within half the lease (plus a renew period), the jobs are stopped.
	for _, j := range []string{"a", "b", "c", "d"} {
		waitGone(t, "job "+j+" after its lease could not be renewed", first.pids[j]...)
	}
	_ = syscall.Kill(db, syscall.SIGCONT)
	r := checkOnce(t, s, "once-1", dir)
	if log, _ := os.ReadFile(filepath.Join(s.home, "server.log")); !strings.Contains(string(log), "could not be renewed") {
		t.Errorf("the server's log does not say the lease could not be renewed:\n%s", s.logTail())
	}
	for _, j := range []string{"a", "b", "c", "d"} {
		if l := readExecLog(t, dir); l.starts[j] != 2 || r.Job(j).Interruptions != 1 {
			t.Errorf("job %s: %d starts, %d interruptions; want 2 and 1", j, l.starts[j], r.Job(j).Interruptions)
		}
	}
}

func TestPluginThatCannotStartFailsTheJobNamingIt(t *testing.T) {
	for _, plugin := range []string{"action-standard", "engine-local"} {
		t.Run(plugin, func(t *testing.T) { pluginCannotStart(t, plugin) })
	}
}

func pluginCannotStart(t *testing.T, plugin string) {
	// The server runs from a copy of the binary; builtin plugins are that
	// binary, checked against its sha256 at every launch.
	bin := filepath.Join(t.TempDir(), "palvella")
	data, err := os.ReadFile(palvellaBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	saved := palvellaBin
	palvellaBin = bin
	t.Cleanup(func() { palvellaBin = saved })

	s := startServer(t, "", "--plugin-wait", "3s")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=30")
	waitStarted(t, dir, 1, "a")
	// The binary changes on disk (as an upgrade would replace it), then the
	// engine stops: it cannot be started again.
	modified := filepath.Join(filepath.Dir(bin), "palvella.new")
	if err := os.WriteFile(modified, append(data, "modified"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(modified, bin); err != nil {
		t.Fatal(err)
	}
	// The plugin stops, and cannot start again.
	if err := syscall.Kill(pluginPID(t, s.cmd.Process.Pid, plugin), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := s.waitRun("once-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the run took %s to fail; --plugin-wait is 3s", took)
	}
	// A retry cannot help a plugin that does not start: none is used.
	if d := r.Job("d"); d.Attempt != 1 {
		t.Errorf("job d (retries: 1) is on attempt %d; a plugin that cannot start uses no retry (%s)", d.Attempt, d.Reason)
	}
	if r.Status != resource.StatusFailure {
		t.Fatalf("run = %s (%s), want failure", r.Status, r.Reason)
	}
	a := r.Job("a")
	t.Logf("job a: %s", a.Reason)
	if a.Status != resource.StatusFailure || !strings.Contains(a.Reason, `"`+plugin+`" did not start within 3s`) || !strings.Contains(a.Reason, "sha256") || strings.Contains(a.Reason, "\n") {
		t.Fatalf("job a = %s (%q); want a failure naming the engine plugin", a.Status, a.Reason)
	}
	// Its action, recorded running with the job's last start, never ran
	// in that execution: without an engine it was not reached.
	if act := a.Actions[0]; plugin == "engine-local" && (act.Status != resource.StatusSkipped || act.Message != "not reached") {
		t.Errorf("job a's action = %s (%q); want skipped, not reached: the engine never started it", act.Status, act.Message)
	}
}

// A pipeline deleted and applied again under the same name starts afresh:
// version 1, run 1, and its runs execute the new content.
func TestDeleteThenApplyStartsAfresh(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	write := func(word string) string {
		f := filepath.Join(dir, word+".yaml")
		src := "apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata: {name: again}\nspec:\n  jobs:\n    - name: say\n      actions:\n        - name: say\n          run: echo " + word + "\n"
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	s.mustCLI("pipeline", "apply", "-f", write("first"))
	s.mustCLI("pipeline", "apply", "-f", write("second"))
	s.mustCLI("pipeline", "run", "again", "--wait")
	s.mustCLI("pipeline", "delete", "again")
	if _, _, code := s.cli("run", "get", "again-1"); code == 0 {
		t.Errorf("the deleted pipeline's run is still there")
	}
	s.mustCLI("pipeline", "apply", "-f", write("third"))
	out := s.mustCLI("pipeline", "run", "again", "--wait")
	if !strings.Contains(out, "again-1") {
		t.Errorf("the first run of the new pipeline is not again-1:\n%s", out)
	}
	r := s.run("again-1")
	if r.Status != resource.StatusSuccess || r.PipelineVersion != 1 {
		t.Fatalf("again-1: %s at version %d; want success at version 1", r.Status, r.PipelineVersion)
	}
	logs := s.mustCLI("run", "logs", "again-1")
	if !strings.Contains(logs, "third") || strings.Contains(logs, "second") || strings.Contains(logs, "first") {
		t.Fatalf("the new pipeline's run did not execute its own content:\n%s", logs)
	}
}

// Over the queue limit, the API answers 429 with Retry-After and the CLI
// says why.
func TestQueueLimitPushesBack(t *testing.T) {
	s := startServer(t, "", "--max-queued-runs", "2")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	s.mustCLI("pipeline", "run", "sleepy")
	s.mustCLI("pipeline", "run", "sleepy")
	resp := s.call("POST", "/api/v1/namespaces/default/pipelines/sleepy/runs", s.adminToken(), `{}`)
	if resp.status != 429 || resp.header.Get("Retry-After") == "" {
		t.Fatalf("third run: %d (Retry-After %q) %s; want 429 with Retry-After", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	_, errOut, code := s.cli("pipeline", "run", "sleepy")
	if code == 0 || !strings.Contains(errOut, "max-queued-runs") {
		t.Fatalf("CLI over the limit: exit %d, %s", code, errOut)
	}
	s.mustCLI("run", "cancel", "sleepy-1")
	s.mustCLI("pipeline", "run", "sleepy")
}

// Runs started at the same moment cannot pass the limit together.
func TestQueueLimitHoldsUnderConcurrentStarts(t *testing.T) {
	s := startServer(t, "", "--max-queued-runs", "3")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	token := s.adminToken()
	codes := make(chan int, 20)
	for range 20 {
		go func() {
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/api/v1/namespaces/default/pipelines/sleepy/runs", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := apiClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	accepted := 0
	for range 20 {
		switch c := <-codes; c {
		case http.StatusCreated, http.StatusOK, http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a start answered %d", c)
		}
	}
	if accepted != 3 {
		t.Fatalf("%d runs accepted at once; the limit is 3", accepted)
	}
}

// A run whose timeout passes while the server is down ends as timed out
// when the server is back; the jobs it had left never start.
func TestRunTimeoutPassedWhileTheServerWasDown(t *testing.T) {
	home := t.TempDir()
	s := startServer(t, home, "--shutdown-grace", "20s")
	dir := jobDir(t)
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "short", `  timeout: 4s
  jobs:
    - name: first
      actions:
        - {name: a, env: {DIR: "`+dir+`"}, run: 'echo "START first" >> "$DIR/log"; sleep 2; echo "END first" >> "$DIR/log"'}
    - name: second
      requires: [first]
      actions:
        - {name: b, env: {DIR: "`+dir+`"}, run: 'echo "START second" >> "$DIR/log"'}
`))
	s.mustCLI("pipeline", "run", "short")
	waitStarted(t, dir, 1, "first")
	s.stop(syscall.SIGTERM) // first finishes within the grace
	time.Sleep(4 * time.Second)
	s.start()
	r := s.waitRun("short-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusFailure || !strings.Contains(r.Reason, "timed out after 4s") {
		t.Fatalf("run = %s (%q), want failure: timed out after 4s", r.Status, r.Reason)
	}
	if l := readExecLog(t, dir); l.starts["second"] != 0 || l.ends["first"] != 1 {
		t.Errorf("after the run's time ran out: %+v; want first ended once and second never started", l)
	}
	for _, j := range r.Jobs {
		if strings.Contains(j.Reason, "after -") {
			t.Errorf("job %s: %q", j.Name, j.Reason)
		}
	}
}

// A job whose engine dies under it every time fails after its fourth
// interruption (at most 3 are run again), saying so, rather than run in a
// loop.
func TestInterruptionsAreBounded(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("once.yaml"))
	dir := jobDir(t)
	s.mustCLI("pipeline", "run", "once", "-p", "dir="+dir, "-p", "seconds=60")
	var lastKill time.Time
	for n := 1; n <= 4; n++ {
		waitStarted(t, dir, n, "a")
		lastKill = time.Now()
		if err := syscall.Kill(pluginPID(t, s.cmd.Process.Pid, "engine-local"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	// On a loaded machine another job may have started after one of those
	// kills and been interrupted fewer times; it would then sleep out its 60
	// seconds. The engine is killed again under whatever still runs, until
	// every job has used up its interruptions.
	for round := 0; round < 4; round++ {
		deadline := time.Now().Add(30 * time.Second)
		var live []string
		for {
			r, running := s.run("once-1"), true
			live = live[:0]
			for _, name := range []string{"a", "b", "c", "d"} {
				j := r.Job(name)
				if j.Status.Terminal() {
					continue
				}
				live = append(live, name)
				// Running again since the last kill, on the engine now.
				if act := j.Action("work"); j.Status != resource.StatusRunning || act == nil || act.Status != resource.StatusRunning ||
					act.StartedAt == nil || !act.StartedAt.After(lastKill) {
					running = false
				}
			}
			if len(live) == 0 || running || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(live) == 0 {
			break
		}
		lastKill = time.Now()
		if err := syscall.Kill(pluginPID(t, s.cmd.Process.Pid, "engine-local"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	r := s.waitRun("once-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	a := r.Job("a")
	if r.Status != resource.StatusFailure || a.Status != resource.StatusFailure || !strings.Contains(a.Reason, "interrupted 4 times") {
		t.Fatalf("run %s, job a %s (%q); want both failed after 4 interruptions", r.Status, a.Status, a.Reason)
	}
	if l := readExecLog(t, dir); l.starts["a"] != 4 || l.ends["a"] != 0 {
		t.Errorf("job a started %d times and ended %d; want 4 starts, none run to its end", l.starts["a"], l.ends["a"])
	}
	if act := a.Action("work"); act.Status != resource.StatusFailure {
		t.Errorf("the action of the failed job is %s, want failure", act.Status)
	}
	// Interruptions are not the job's own failures: no retry follows them.
	if d := r.Job("d"); d.Attempt != 1 || d.Status != resource.StatusFailure {
		t.Errorf("job d (retries: 1): %s on attempt %d; want failure on attempt 1", d.Status, d.Attempt)
	}
}
