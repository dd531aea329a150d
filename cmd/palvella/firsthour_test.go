package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/resource"
)

// What a first hour with Palvella meets, against the real binary.

// A mistyped subcommand is an error with a suggestion and exit 1, like a
// mistyped top-level command; a group without a subcommand prints its help.
func TestMistypedSubcommand(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"run", "lgos"}, "logs"},
		{[]string{"pipeline", "aply"}, "apply"},
		{[]string{"registry", "lst"}, "list"},
		{[]string{"rnu"}, "run"},
	} {
		out, errOut, code := palvella(t, home, tc.args...)
		if code == 0 || !strings.Contains(errOut, "unknown command") || !strings.Contains(errOut, "Did you mean this?\n\t"+tc.suggest+"\n") {
			t.Errorf("palvella %s: exit %d, stdout %q, stderr %q; want an error suggesting %s", strings.Join(tc.args, " "), code, out, errOut, tc.suggest)
		}
	}
	out, _, code := palvella(t, home, "run")
	if code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("palvella run: exit %d, %q; want its help", code, out)
	}
}

// pipeline validate needs no server for what needs none.
func TestValidateWithoutServer(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PALVELLA_SERVER", "http://"+freeAddr(t))
	out, errOut, code := palvella(t, home, "pipeline", "validate", "-f", exampleFile(t, "terraform/pipeline.yaml"))
	if code != 0 || !strings.Contains(out, "valid (checked without a server") {
		t.Fatalf("validate without a server: exit %d, %q %q", code, out, errOut)
	}
	bad := writePipeline(t, "bad", `  jobs:
    - name: a
      if: params.deploy
      actions:
        - {name: s, run: "echo ${{ params.nope }}"}
        - {name: c, type: compare, expr: "1 + 1"}
`)
	out, errOut, code = palvella(t, home, "pipeline", "validate", "-f", bad, "--offline")
	for _, want := range []string{`unknown name "deploy" in params`, `unknown name "nope" in params`, "1 + 1 is a number, not true or false"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate --offline of a bad file: stdout lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || !strings.Contains(errOut, "the pipeline file has 3 problems") {
		t.Errorf("validate of a bad file: exit %d, stderr %q", code, errOut)
	}
}

// Errors say a thing once, with the store's internals translated; run list
// is newest first by creation, whatever the names' order, with --limit.
func TestErrorsAndRunList(t *testing.T) {
	s := startServer(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "run", "nope"}, "Error: pipeline default/nope not found\n"},
		{[]string{"pipeline", "get", "nope"}, "Error: pipeline default/nope not found\n"},
		{[]string{"run", "get", "nope-1"}, "Error: run default/nope-1 not found\n"},
		{[]string{"run", "logs", "nope-1"}, "Error: run default/nope-1 not found\n"},
		{[]string{"run", "approve", "nope-1"}, "Error: run default/nope-1 not found\n"},
		{[]string{"run", "cancel", "nope-1"}, "Error: run default/nope-1 not found\n"},
	} {
		_, errOut, code := s.cli(tc.args...)
		if code == 0 || errOut != tc.want {
			t.Errorf("palvella %s: exit %d, stderr %q, want %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}

	// An if that is not true or false is refused at apply, in words.
	bad := writePipeline(t, "cond", `  params:
    - {name: n, type: number, default: 1}
  jobs:
    - name: a
      if: params.n + 1
      actions: [{name: s, run: "true"}]
`)
	out, _, code := s.cli("pipeline", "apply", "-f", bad)
	if code != 1 || !strings.Contains(out, "params.n + 1 is a number, not true or false") || strings.Contains(out, "bool(") {
		t.Errorf("apply of a non-boolean if: exit %d, %q", code, out)
	}

	file := writePipeline(t, "quick", "  jobs:\n    - name: a\n      actions: [{name: s, run: \"true\"}]\n")
	s.mustCLI("pipeline", "apply", "-f", file)
	for range 11 {
		s.mustCLI("pipeline", "run", "quick", "--wait")
	}
	var runs []resource.Run
	if err := json.Unmarshal([]byte(s.mustCLI("run", "list", "--limit", "3", "-o", "json")), &runs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Name)
	}
	if fmt.Sprint(names) != "[quick-11 quick-10 quick-9]" {
		t.Errorf("run list --limit 3 = %v, want [quick-11 quick-10 quick-9]", names)
	}
	table := s.mustCLI("run", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 12 || !strings.HasPrefix(lines[1], "quick-11 ") || !strings.HasPrefix(lines[11], "quick-1 ") {
		t.Errorf("run list:\n%s\nwant quick-11 first and quick-1 last", table)
	}
}

// run get and run logs read well: durations to the millisecond under a
// second, outputs, fixed-width times (or none), and a run waiting
// for approval says so and how to approve it.
func TestRunsReadWell(t *testing.T) {
	s := startServer(t, "")
	file := writePipeline(t, "gated", `  jobs:
    - name: build
      actions:
        - name: compile
          run: |
            echo first
            echo "version=1.2.3" >> "$PALVELLA_OUTPUT"
    - name: gate
      requires: [build]
      actions:
        - {name: ok, type: approval, message: "Ship it?"}
`)
	s.mustCLI("pipeline", "apply", "-f", file)
	s.mustCLI("pipeline", "run", "gated")
	s.waitRun("gated-1", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting || r.Status.Terminal() })
	get := s.mustCLI("run", "get", "gated-1")
	for _, want := range []string{
		"Waiting:   job gate waits for approval (Ship it?): palvella run approve gated-1 --job gate -n default",
		"Outputs:\n", "  build.version = 1.2.3\n",
	} {
		if !strings.Contains(get, want) {
			t.Errorf("run get has no %q:\n%s", want, get)
		}
	}
	if !regexp.MustCompile(`compile\s+run\s+success\s+\d+ms`).MatchString(get) {
		t.Errorf("run get: the action's duration is not in milliseconds:\n%s", get)
	}
	logs := s.mustCLI("run", "logs", "gated-1")
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|system) `)
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if l == "" || strings.HasPrefix(l, "==> ") {
			continue
		}
		n++
		if !stamped.MatchString(l) {
			t.Errorf("run logs: line %q has no fixed-width RFC 3339 time", l)
		}
	}
	if n == 0 || !strings.Contains(logs, "==> job gate waits for approval (Ship it?): palvella run approve gated-1 --job gate") {
		t.Errorf("run logs:\n%s", logs)
	}
	plain := s.mustCLI("run", "logs", "gated-1", "--job", "build", "--no-timestamps")
	if !strings.Contains(plain, "\nstdout first\n") {
		t.Errorf("run logs --no-timestamps:\n%s", plain)
	}
	s.mustCLI("run", "approve", "gated-1")
	if r := s.waitRun("gated-1", "finished", func(r *resource.Run) bool { return r.Status.Terminal() }); r.Status != resource.StatusSuccess {
		t.Errorf("gated-1 = %s after approval", r.Status)
	}
}
