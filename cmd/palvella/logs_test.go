package main

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// Tests of stored logs with the real server and CLI: complete, bounded by
// --max-log-bytes, long lines split.

// endedRun starts a run of pipeline and waits, up to timeout, until it
// ends.
func (s *testServer) endedRun(pipeline string, timeout time.Duration) *resource.Run {
	s.t.Helper()
	name := s.startedRun(pipeline)
	deadline := time.Now().Add(timeout)
	for {
		r := s.run(name)
		if r.Status.Terminal() {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s did not end in %s; it is %s:\n%s", name, timeout, r.Status, s.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// storedLine is one line of `run logs`: "<time> <stream> <text>".
type storedLine struct{ stream, text string }

// runLogs calls fn with each log line `palvella run logs RUN` prints (the
// action headers are left out).
func (s *testServer) runLogs(run string, fn func(storedLine)) {
	s.t.Helper()
	cmd := exec.Command(palvellaBin, "run", "logs", run)
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
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 256<<10), 256<<10)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "==> ") {
			continue
		}
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 {
			s.t.Fatalf("bad log line %.200q", line)
		}
		fn(storedLine{parts[1], parts[2]})
	}
	if err := sc.Err(); err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		s.t.Fatalf("run logs %s: %v: %s", run, err, stderr.String())
	}
}

// A job printing 1,000,000 lines keeps all of them: `run logs` prints
// each, in order.
func TestRunLogsKeepsAMillionLines(t *testing.T) {
	if testing.Short() {
		t.Skip("a million lines")
	}
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "million", `  jobs:
    - name: print
      actions:
        - name: seq
          run: seq 1000000
`))
	r := s.endedRun("million", 5*time.Minute)
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s", r.Status)
	}
	next := 1
	s.runLogs(r.Name, func(l storedLine) {
		if l.stream != "stdout" {
			t.Fatalf("line from %s: %q", l.stream, l.text)
		}
		if l.text != strconv.Itoa(next) {
			t.Fatalf("line %d is %q", next, l.text)
		}
		next++
	})
	if next != 1000001 {
		t.Fatalf("run logs printed %d lines, want 1000000", next-1)
	}
}

// Past --max-log-bytes the job goes on and succeeds; its stored log ends
// with a line saying how much was not stored.
func TestLogOverTheLimitEndsWithMarker(t *testing.T) {
	s := startServer(t, "", "--max-log-bytes", "65536")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "chatty", `  jobs:
    - name: print
      actions:
        - name: seq
          run: seq 100000
        - name: after
          run: echo still here
`))
	r := s.endedRun("chatty", 2*time.Minute)
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	var lines []storedLine
	var stored int
	s.runLogs(r.Name, func(l storedLine) {
		lines = append(lines, l)
		stored += len(l.text)
	})
	if stored > 65536 {
		t.Errorf("%d bytes of text stored, more than the limit", stored)
	}
	// seq 1 100000 writes 588,895 bytes.
	var kept int
	for i, l := range lines {
		if l.stream == "system" {
			lines = lines[i:]
			break
		}
		if l.text != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q", i+1, l.text)
		}
		kept += len(l.text) + 1
	}
	want := []string{
		"[log truncated: this action's log reached the 65536-byte limit; what it writes from now on is not stored]",
		"[log truncated: this action's log reached the 65536-byte limit; " + strconv.Itoa(588895-kept) + " more bytes were not stored]",
		"still here",
	}
	if len(lines) != len(want) {
		t.Fatalf("after the kept lines: %q, want %q", lines, want)
	}
	for i := range want {
		if lines[i].text != want[i] {
			t.Errorf("line %q, want %q", lines[i].text, want[i])
		}
	}
}

// A single line of 50 MB is kept whole, as lines of at most 64 KiB, each
// after the first marked as a continuation.
func TestFiftyMegabyteLineIsKeptSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB")
	}
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", writePipeline(t, "wide", `  jobs:
    - name: print
      actions:
        - name: wide
          run: head -c 50000000 /dev/zero | tr '\0' x; echo; echo end
`))
	r := s.endedRun("wide", 3*time.Minute)
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s: %s\n%s", r.Status, r.Reason, s.mustCLI("run", "get", r.Name))
	}
	total, pieces := 0, 0
	var last storedLine
	s.runLogs(r.Name, func(l storedLine) {
		last = l
		if l.text == "end" {
			return
		}
		want := "stdout+"
		if pieces == 0 {
			want = "stdout"
		}
		if l.stream != want || len(l.text) > 64<<10 || strings.Trim(l.text, "x") != "" {
			t.Fatalf("piece %d: stream %s, %d bytes", pieces, l.stream, len(l.text))
		}
		pieces++
		total += len(l.text)
	})
	if total != 50000000 || last != (storedLine{"stdout", "end"}) {
		t.Fatalf("%d bytes in %d pieces, then %q; want 50000000 bytes", total, pieces, last)
	}
}
