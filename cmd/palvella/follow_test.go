package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
)

// Tests of following runs with the real server and CLI.

func writePipeline(t *testing.T, name, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(file, []byte("apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: "+name+"\nspec:\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// startedRun starts a run and returns its name.
func (s *testServer) startedRun(pipeline string) string {
	s.t.Helper()
	var r resource.Run
	if err := json.Unmarshal([]byte(s.mustCLI("pipeline", "run", pipeline, "-o", "json")), &r); err != nil {
		s.t.Fatal(err)
	}
	return r.Name
}

// A follower attached while a job prints 10,000 numbered lines gets each
// line exactly once, in order, up to the end.
func TestFollowerAttachedMidRunGetsEveryLineOnce(t *testing.T) {
	s := startServer(t, "")
	gate := filepath.Join(jobDir(t), "go-on")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "lines", `  jobs:
    - name: print
      actions:
        - name: numbers
          run: |
            i=1
            while [ $i -le 5000 ]; do echo "line $i"; i=$((i+1)); done
            while [ ! -e `+gate+` ]; do sleep 0.05; done
            while [ $i -le 10000 ]; do echo "line $i"; i=$((i+1)); done
`))
	name := s.startedRun("lines")
	// Wait until the first half is written: the follower attaches mid-run.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.mustCLI("run", "logs", name), "line 5000\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the job never printed its first half:\n%s", s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := exec.Command(palvellaBin, "run", "logs", name, "--follow")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`^print/numbers \| line (\d+)$`)
	next := 1
	released := false
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue // the system lines
		}
		n, _ := strconv.Atoi(m[1])
		if n != next {
			t.Fatalf("got line %d, want line %d", n, next)
		}
		next++
		if n == 5000 && !released {
			released = true
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run logs --follow: %v: %s", err, stderr.String())
	}
	if next != 10001 {
		t.Fatalf("the follower got lines 1 to %d, want 1 to 10000", next-1)
	}
	if r := s.run(name); r.Status != resource.StatusSuccess {
		t.Fatalf("run %s", r.Status)
	}
	// Once ended, the same follow reads storage: the same lines.
	again := s.mustCLI("run", "logs", name, "--follow", "--job", "print", "--action", "numbers")
	if n := strings.Count(again, "| line "); n != 10000 {
		t.Fatalf("following the ended action gave %d lines", n)
	}
}

const parallelJobs = `  jobs:
    - name: left
      actions:
        - name: work
          run: for i in 1 2 3 4; do echo "left $i"; sleep 0.3; done
    - name: right
      actions:
        - name: work
          run: for i in 1 2 3 4; do echo "right $i"; sleep 0.3; done
    - name: join
      requires: [left, right]
      actions:
        - name: sum
          run: echo "joined"
`

func TestWatchAndTimelineOfParallelJobs(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "par", parallelJobs))
	name := s.startedRun("par")

	// run watch follows the run to its end; not on a terminal it prints
	// each change, then the final view and a summary.
	watch, errOut, code := s.cli("run", "watch", name, "--interval", "100ms")
	if code != 0 {
		t.Fatalf("run watch: exit %d: %s\n%s", code, errOut, watch)
	}
	for _, want := range []string{
		"job left running", "job right running", "job join success", "run " + name + " success",
		"Run default/" + name + "  success",
		"work: left 4", "work: right 4", "sum: joined",
		"Run default/" + name + " success in ", ": 3 jobs (3 success)",
	} {
		if !strings.Contains(watch, want) {
			t.Errorf("run watch does not say %q:\n%s", want, watch)
		}
	}
	if i, j := strings.Index(watch, "job left running"), strings.Index(watch, "job join success"); i > j {
		t.Errorf("join succeeded before left ran:\n%s", watch)
	}

	// The timeline: left and right overlap, join comes after both.
	var tl api.Timeline
	if err := json.Unmarshal([]byte(s.mustCLI("run", "timeline", name, "-o", "json")), &tl); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]api.TimelineJob{}
	for _, j := range tl.Jobs {
		jobs[j.Name] = j
	}
	left, right, join := jobs["left"], jobs["right"], jobs["join"]
	if left.StartedAt == nil || right.StartedAt == nil || join.StartedAt == nil {
		t.Fatalf("timeline %+v", tl)
	}
	if !left.StartedAt.Before(*right.FinishedAt) || !right.StartedAt.Before(*left.FinishedAt) {
		t.Errorf("left and right did not run at the same time: %+v %+v", left, right)
	}
	if join.StartedAt.Before(*left.FinishedAt) || join.StartedAt.Before(*right.FinishedAt) {
		t.Errorf("join started before left and right ended: %+v", join)
	}
	if left.RunMs < 1000 || left.Actions[0].RunMs < 1000 {
		t.Errorf("left ran %d ms (action %d ms); it sleeps 1.2s", left.RunMs, left.Actions[0].RunMs)
	}

	text := s.mustCLI("run", "timeline", name, "--width", "40")
	rows := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			if i, j := strings.Index(line, "|"), strings.LastIndex(line, "|"); i >= 0 && j > i {
				rows[f[0]] = line[i+1 : j]
			}
		}
	}
	bar := func(job string) (first, last int) {
		b := rows[job]
		return strings.IndexByte(b, '#'), strings.LastIndexByte(b, '#')
	}
	lf, ll := bar("left")
	rf, rl := bar("right")
	jf, _ := bar("join")
	if lf < 0 || rf < 0 || jf < 0 || len(rows["left"]) != 40 {
		t.Fatalf("timeline rows:\n%s", text)
	}
	if lf > rl || rf > ll {
		t.Errorf("the bars of left and right do not overlap:\n%s", text)
	}
	if jf < ll || jf < rl {
		t.Errorf("join's bar starts before left's and right's end:\n%s", text)
	}
	for _, want := range []string{"success", "  work", "  sum"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline does not show %q:\n%s", want, text)
		}
	}
}

func TestWatchOfAFailedRunExitsNonZero(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "bad", `  jobs:
    - name: broken
      actions:
        - name: fail
          run: echo "about to fail"; exit 3
`))
	name := s.startedRun("bad")
	out, errOut, code := s.cli("run", "watch", name, "--interval", "100ms")
	if code != 1 || !strings.Contains(out, ": 1 jobs (1 failure)") || !strings.Contains(out, "fail: about to fail") || !strings.Contains(errOut, "failure") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, errOut, code := s.cli("run", "logs", name, "--follow"); code != 1 || !strings.Contains(errOut, "ended with failure") {
		t.Fatalf("run logs --follow of a failed run: exit %d: %s", code, errOut)
	}
}

func TestEventsAndDump(t *testing.T) {
	s := startServer(t, "")
	const secret = "a-webhook-secret-in-a-credential"
	s.mustCLI("credential", "set", "par-hook", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "par", `  triggers:
    - type: webhook
      name: hook
      secret: {from_credential: par-hook}
`+parallelJobs))
	cmd := exec.Command(palvellaBin, "events", "--follow", "--pipeline", "par", "-o", "json")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(500 * time.Millisecond) // let the follower subscribe
	name := s.startedRun("par")

	dec := json.NewDecoder(out)
	seen := map[string]bool{}
	for !seen["run "+name+" success"] {
		var e events.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("events --follow ended: %v (saw %v)", err, seen)
		}
		if e.Pipeline != "par" {
			t.Errorf("event of another pipeline: %+v", e)
		}
		key := fmt.Sprintf("%s %s %s", e.Type, strings.Trim(e.Run+"/"+e.Job+"/"+e.Action, "/"), e.Status)
		seen[key] = true
	}
	for _, want := range []string{"run " + name + " pending", "job " + name + "/left running", "action " + name + "/left/work success", "job " + name + "/join success"} {
		if !seen[want] {
			t.Errorf("no event %q; saw %v", want, seen)
		}
	}
	// Without --follow: the recent events the server keeps.
	if recent := s.mustCLI("events"); !strings.Contains(recent, "run      success   "+name) {
		t.Errorf("events:\n%s", recent)
	}

	dump := s.mustCLI("run", "dump", name)
	if strings.Contains(dump, secret) {
		t.Errorf("the dump shows the webhook secret")
	}
	var d api.RunDump
	if err := json.Unmarshal([]byte(dump), &d); err != nil {
		t.Fatal(err)
	}
	if d.Run.Name != name || d.Pipeline == nil || !strings.Contains(d.Pipeline.Source, "secret: {from_credential: par-hook}") || len(d.Timeline.Jobs) != 3 ||
		!strings.Contains(d.Logs["left/work"], "left 4") || !strings.Contains(d.Logs["join/sum"], "joined") {
		t.Errorf("dump: run %s pipeline %v timeline %d jobs logs %v", d.Run.Name, d.Pipeline != nil, len(d.Timeline.Jobs), d.Logs)
	}
}
