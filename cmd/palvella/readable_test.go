package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// Tests of runs that read well, with the real server and CLI: approvals in
// run logs --follow, run watch and run get; run watch's last frame; attempt
// n of m; pipeline get; trigger records.

// lineWatcher collects the stdout lines of a running CLI command and says
// when one of them matches.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
	done  bool
}

func (lw *lineWatcher) text() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return strings.Join(lw.lines, "\n")
}

// waitFor waits until a line contains want (or the command ends).
func (lw *lineWatcher) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		text := lw.text()
		if strings.Contains(text, want) {
			return
		}
		lw.mu.Lock()
		done := lw.done
		lw.mu.Unlock()
		if done || time.Now().After(deadline) {
			t.Fatalf("never printed %q; printed:\n%s", want, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCLI starts the CLI in the background; wait returns its exit code
// and stderr.
func (s *testServer) startCLI(args ...string) (*lineWatcher, func() (int, string)) {
	s.t.Helper()
	cmd := exec.Command(palvellaBin, args...)
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	lw := &lineWatcher{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lw.mu.Lock()
			lw.lines = append(lw.lines, sc.Text())
			lw.mu.Unlock()
		}
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	}()
	s.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return lw, func() (int, string) {
		<-read
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			s.t.Fatalf("%v: %v", args, err)
		}
		return 0, stderr.String()
	}
}

// onTerminal runs the CLI with its stdout on a pseudo-terminal (through
// script(1)), in the background; wait returns what it wrote and its exit
// code.
func (s *testServer) onTerminal(args ...string) func() (string, int) {
	s.t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		s.t.Fatal("script(1) runs the CLI on a terminal for this test: install it (Debian: bsdutils)")
	}
	quoted := []string{palvellaBin}
	for _, a := range args {
		quoted = append(quoted, "'"+a+"'")
	}
	cmd := exec.Command(script, "-qec", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() (string, int) {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			s.t.Fatal(err)
		}
		return strings.ReplaceAll(out.String(), "\r\n", "\n"), code
	}
}

// frames splits what run watch drew on a terminal into its frames.
func frames(out string) []string {
	return strings.Split(out, "\x1b[H\x1b[2J")[1:]
}

const approvalPipeline = `  jobs:
    - name: build
      actions:
        - name: say
          run: echo building
    - name: deploy
      requires: [build]
      retries: 2
      actions:
        - name: ask
          type: approval
          message: ship it?
        - name: go
          run: echo deployed
`

// A run waiting for approval says so, and how to approve, in run logs
// --follow (once, and the follow goes on to the end), in run watch (its
// lines, and its live view on a terminal) and in run get.
func TestWaitingRunSaysHowToApprove(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "ship", approvalPipeline))
	name := s.startedRun("ship")
	hint := "job deploy waits for approval (ship it?): palvella run approve " + name + " --job deploy -n default (or run reject)"

	follow, followDone := s.startCLI("run", "logs", name, "--follow")
	watch, watchDone := s.startCLI("run", "watch", name, "--interval", "100ms")
	follow.waitFor(t, "==> "+hint, 60*time.Second)
	watch.waitFor(t, hint, 30*time.Second)
	tty := s.onTerminal("run", "watch", name, "--interval", "100ms")

	get := s.mustCLI("run", "get", name)
	for _, want := range []string{"Status:    waiting", "Waiting:   " + hint, "waiting (attempt 1 of 3)"} {
		if !strings.Contains(get, want) {
			t.Errorf("run get does not say %q:\n%s", want, get)
		}
	}
	// Not-followed jobs get no hint.
	if out := s.mustCLI("run", "logs", name, "--follow", "--job", "build"); strings.Contains(out, "==>") {
		t.Errorf("following job build printed a hint:\n%s", out)
	}

	time.Sleep(1500 * time.Millisecond) // the follow polls on: still one hint
	s.mustCLI("run", "approve", name, "--job", "deploy")
	if code, errOut := followDone(); code != 0 {
		t.Fatalf("run logs --follow: exit %d: %s\n%s", code, errOut, follow.text())
	}
	text := follow.text()
	if n := strings.Count(text, "==> "); n != 1 {
		t.Errorf("run logs --follow printed %d hints, want 1:\n%s", n, text)
	}
	if i, j := strings.Index(text, "==> "+hint), strings.Index(text, "deploy/go | deployed"); j < i {
		t.Errorf("the follow did not go on after the hint to the end:\n%s", text)
	}

	if code, errOut := watchDone(); code != 0 {
		t.Fatalf("run watch: exit %d: %s\n%s", code, errOut, watch.text())
	}
	wt := watch.text()
	for _, want := range []string{"job deploy waiting (attempt 1 of 3)", hint, "job deploy success", "Run default/" + name + " success in "} {
		if !strings.Contains(wt, want) {
			t.Errorf("run watch does not say %q:\n%s", want, wt)
		}
	}
	if strings.Count(wt, hint) != 1 {
		t.Errorf("run watch printed the hint %d times, want once:\n%s", strings.Count(wt, hint), wt)
	}

	out, code := tty()
	if code != 0 {
		t.Fatalf("run watch on a terminal: exit %d:\n%s", code, out)
	}
	fs := frames(out)
	if len(fs) < 2 || !strings.Contains(fs[0], "deploy  waiting") || !strings.Contains(fs[0], "==> "+hint) {
		t.Fatalf("the first frame on a terminal does not show the waiting job and its hint:\n%q", out)
	}
	if last := fs[len(fs)-1]; strings.Contains(last, "==> ") || !strings.Contains(last, "go: deployed") {
		t.Errorf("the last frame:\n%s", last)
	}

	if after := s.mustCLI("run", "get", name); strings.Contains(after, "Waiting:") || !strings.Contains(after, "success (attempt 1 of 3)") {
		t.Errorf("run get after the approval:\n%s", after)
	}
}

// On a terminal, run watch's last frame keeps the last lines of each job,
// the lines written just before the run ended included.
func TestWatchLastFrameKeepsLastLines(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "tail", `  jobs:
    - name: left
      actions:
        - name: work
          run: for i in 1 2 3 4 5; do echo "left $i"; sleep 0.2; done
    - name: join
      requires: [left]
      actions:
        - name: sum
          run: echo one; echo two; echo three; echo joined
`))
	name := s.startedRun("tail")
	out, code := s.onTerminal("run", "watch", name, "--interval", "100ms", "--lines", "2")()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	fs := frames(out)
	last := fs[len(fs)-1]
	for _, want := range []string{"Run default/" + name + "  success", "| work: left 4", "| work: left 5", "| sum: three", "| sum: joined",
		"Run default/" + name + " success in ", ": 2 jobs (2 success)"} {
		if !strings.Contains(last, want) {
			t.Errorf("the last frame does not show %q:\n%s", want, last)
		}
	}
	if strings.Contains(last, "left 3") || strings.Contains(last, "sum: two") {
		t.Errorf("the last frame shows more than --lines 2 per job:\n%s", last)
	}

	// A watch of the ended run shows the same.
	out, _ = s.onTerminal("run", "watch", name)()
	if fs := frames(out); len(fs) == 0 || !strings.Contains(fs[len(fs)-1], "| sum: joined") {
		t.Errorf("watching the ended run:\n%s", out)
	}
}

// A job allowed retries shows which attempt of how many it is.
func TestRunGetShowsAttemptOfMax(t *testing.T) {
	s := startServer(t, "")
	counter := filepath.Join(jobDir(t), "tries")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "flaky", `  jobs:
    - name: flaky
      retries: 3
      actions:
        - name: try
          run: |
            echo x >> `+counter+`
            n=$(wc -l < `+counter+`)
            echo "try $n"
            [ "$n" -ge 2 ]
    - name: once
      actions:
        - name: hello
          run: echo hello
`))
	name := s.startedRun("flaky")
	r := s.waitRun(name, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s:\n%s", r.Status, s.mustCLI("run", "get", name))
	}
	if j := r.Job("flaky"); j.Attempt != 2 || j.MaxAttempts != 4 {
		t.Errorf("flaky: attempt %d of %d, want 2 of 4", j.Attempt, j.MaxAttempts)
	}
	if j := r.Job("once"); j.MaxAttempts != 1 {
		t.Errorf("once: maxAttempts %d, want 1", j.MaxAttempts)
	}
	get := s.mustCLI("run", "get", name)
	if !regexp.MustCompile(`(?m)^flaky\s+success \(attempt 2 of 4\)`).MatchString(get) {
		t.Errorf("run get does not say attempt 2 of 4:\n%s", get)
	}
	if regexp.MustCompile(`(?m)^once\s.*attempt`).MatchString(get) {
		t.Errorf("run get speaks of attempts of a job without retries:\n%s", get)
	}
}

// pipeline get shows the jobs, the triggers (never a secret's value) and
// the versions; -o json keeps its shape.
func TestPipelineGetShowsJobsTriggersAndVersions(t *testing.T) {
	s := startServer(t, "")
	const secret = "the-webhook-secret-value-42"
	s.mustCLI("credential", "set", "hook-secret", "--value", secret)
	body := `  params:
    - name: env
      default: dev
  triggers:
    - type: webhook
      name: on-push
      secret: {from_credential: hook-secret}
    - type: cron
      name: nightly
      expression: "0 3 * * *"
      timezone: Europe/Helsinki
    - type: interval
      name: hourly
      every: 1h
  jobs:
    - name: build
      timeout: 5m
      actions:
        - name: compile
          run: echo compile
        - name: pack
          run: echo pack
    - name: deploy
      requires: [build]
      if: params.env == "prod"
      retries: 2
      engine: {type: local}
      actions:
        - name: go
          run: echo go
    - name: cleanup
      requires: [build, deploy]
      when: always
      actions:
        - name: rm
          run: echo rm
`
	file := writePipeline(t, "shipit", body)
	s.mustCLI("pipeline", "apply", "-f", file)
	if err := os.WriteFile(file, []byte(strings.Replace(mustRead(t, file), "echo rm", "echo removed", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)

	out := s.mustCLI("pipeline", "get", "shipit")
	if strings.Contains(out, secret) {
		t.Fatalf("pipeline get prints the secret:\n%s", out)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for name, want := range map[string]string{
		"build":   "build - success - default 2 actions 0 5m0s",
		"deploy":  `deploy build success params.env == "prod" local 1 action 2 -`,
		"cleanup": "cleanup build,deploy always - default 1 action 0 -",
		"on-push": "on-push webhook POST /hooks/default/shipit/on-push on the webhook listener, signed with credential hook-secret",
		"nightly": "nightly cron 0 3 * * * (Europe/Helsinki)",
		"hourly":  "hourly interval every 1h0m0s",
	} {
		if got := strings.Join(rows[name], " "); got != want {
			t.Errorf("row %s:\n got %q\nwant %q\n%s", name, got, want, out)
		}
	}
	for _, want := range []string{"Jobs:", "Triggers:", "Versions:", "Params:      env (string)"} {
		if !strings.Contains(out, want) {
			t.Errorf("pipeline get does not say %q:\n%s", want, out)
		}
	}
	var got struct {
		Pipeline resource.Pipeline          `json:"pipeline"`
		Versions []resource.PipelineVersion `json:"versions"`
	}
	if err := json.Unmarshal([]byte(s.mustCLI("pipeline", "get", "shipit", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Pipeline.Version != 2 || len(got.Versions) != 2 || len(got.Pipeline.Spec) == 0 {
		t.Fatalf("pipeline get -o json: %+v", got)
	}
	for _, v := range got.Versions {
		hash := strings.TrimPrefix(v.Hash, "sha256:")
		if !regexp.MustCompile(`(?m)^  v` + fmt.Sprint(v.Version) + `\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+` + hash[:12] + `$`).MatchString(out) {
			t.Errorf("no row of version %d with hash %s:\n%s", v.Version, hash[:12], out)
		}
	}
}

// palvella trigger records lists the firings newest first, with their
// outcome, runs and reason; -o json, --limit, a pipeline and -n select.
func TestTriggerRecordsCommand(t *testing.T) {
	s, hooks := webhookServer(t, "")
	const secret = "records-secret"
	s.mustCLI("credential", "set", "rec-secret", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "rec", `  triggers:
    - type: webhook
      name: on-push
      secret: {from_credential: rec-secret}
  jobs:
    - name: one
      actions:
        - name: hello
          run: echo hello
`))
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "other", `  jobs:
    - name: one
      actions:
        - name: hello
          run: echo hello
`))
	url := hooks + "/hooks/default/rec/on-push"
	if r := hook(t, url, []byte(`{}`)); r.status != http.StatusUnauthorized {
		t.Fatalf("unsigned call: %d %+v", r.status, r.body)
	}
	time.Sleep(20 * time.Millisecond)
	body := []byte(`{"ref": "main"}`)
	signed := hook(t, url, body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "rec-delivery-1")
	if signed.status != http.StatusAccepted {
		t.Fatalf("signed call: %d %+v", signed.status, signed.body)
	}
	time.Sleep(20 * time.Millisecond)
	manual := s.startedRun("other")

	out := s.mustCLI("trigger", "records")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^TIME\s+PIPELINE\s+TRIGGER\s+TYPE\s+OUTCOME\s+RUNS\s+RECORD\s+REASON$`).MatchString(lines[0]) {
		t.Fatalf("trigger records:\n%s", out)
	}
	for i, want := range []string{
		`other\s+-\s+manual\s+started\s+` + manual + `\s+\S+\s*$`,
		`rec\s+on-push\s+webhook\s+started\s+` + signed.body.Run + `\s+` + signed.body.Record + `\s*$`,
		`rec\s+on-push\s+webhook\s+rejected\s+-\s+\S+\s+unsigned: `,
	} {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+` + want).MatchString(lines[i+1]) {
			t.Errorf("line %d of trigger records does not match %s:\n%s", i+1, want, out)
		}
	}

	var recs []resource.TriggerRecord
	if err := json.Unmarshal([]byte(s.mustCLI("trigger", "records", "rec", "--limit", "1", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Name != signed.body.Record || recs[0].Outcome != resource.TriggerStarted {
		t.Fatalf("trigger records rec --limit 1 -o json: %+v", recs)
	}
	if out := s.mustCLI("trigger", "records", "-n", "elsewhere", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("records of an empty namespace: %s", out)
	}
	if _, errOut, code := s.cli("trigger", "records", "--limit", "0"); code != 1 || !strings.Contains(errOut, "--limit") {
		t.Errorf("--limit 0: exit %d: %s", code, errOut)
	}

	one := s.mustCLI("trigger", "record", signed.body.Record)
	for _, want := range []string{"Pipeline:  rec", "Trigger:   on-push (webhook)", "Outcome:   started", "Runs:      " + signed.body.Run, "Delivery:  rec-delivery-1"} {
		if !strings.Contains(one, want) {
			t.Errorf("trigger record does not say %q:\n%s", want, one)
		}
	}
	if _, errOut, code := s.cli("trigger", "record", "nope"); code != 1 || !strings.Contains(errOut, `namespace default has no trigger record "nope"`) {
		t.Errorf("a missing record: exit %d: %s", code, errOut)
	}
}
