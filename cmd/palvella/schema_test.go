package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// Action params and job arguments are checked against the schemas the
// plugins describe: at apply, each problem naming the file, the line and
// the field; when the action runs, after interpolation, failing it with
// the field named.

func schemaTestFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// in returns the server as seen from a subtest, which its failures stop.
func (s *testServer) in(t *testing.T) *testServer {
	c := *s
	c.t = t
	return &c
}

func TestParamsCheckedAgainstPluginSchemas(t *testing.T) {
	srv := startServer(t, "")

	t.Run("at apply", func(t *testing.T) {
		s := srv.in(t)
		bad := schemaTestFile(t, "bad.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: bad}
spec:
  params: [{name: re}]
  jobs:
    - name: build
      actions:
        - {name: m, type: match, input: x, pattern: "(["}
        - {name: w, run: make, workdir: 3}
        - {name: later, type: match, input: x, pattern: "${{ params.re }}"}
    - name: plan
      uses: terraform/plan
      with:
        vars: not-an-object
        reconfigure: maybe
`)
		out, errOut, code := s.cli("pipeline", "apply", "-f", bad)
		if code == 0 {
			t.Fatalf("apply accepted params their schemas refuse: %s", out)
		}
		errOut = out + errOut
		for _, want := range []string{
			"bad.yaml:9: spec.jobs[0].actions[0].pattern: invalid regular expression: error parsing regexp: missing closing ]: `[`",
			"bad.yaml:10: spec.jobs[0].actions[1].workdir: got number, want string",
			"bad.yaml:15: spec.jobs[1].with.vars: got string, want object",
			`bad.yaml:16: spec.jobs[1].with.reconfigure: unknown value "maybe" (want true, false, true or false)`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("apply's errors do not say\n  %s\ngot:\n%s", want, errOut)
			}
		}
		// The pattern given by an expression is checked when it runs, not
		// at apply.
		if strings.Contains(errOut, "actions[2]") {
			t.Errorf("an interpolated pattern was checked at apply:\n%s", errOut)
		}
	})

	t.Run("after interpolation", func(t *testing.T) {
		s := srv.in(t)
		p := schemaTestFile(t, "notify.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: tell}
spec:
  params: [{name: fmt, default: slack}]
  jobs:
    - name: tell
      actions:
        - {name: say, type: notify, url: "", message: hello, format: "${{ params.fmt }}"}
`)
		s.mustCLI("pipeline", "apply", "-f", p)
		s.mustCLI("pipeline", "run", "tell", "--wait")
		if r := s.run("tell-1"); r.Status != resource.StatusSuccess {
			t.Fatalf("run with a valid format: %s", s.mustCLI("run", "get", "tell-1"))
		}
		s.cli("pipeline", "run", "tell", "-p", "fmt=teams", "--wait")
		r := s.waitRun("tell-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		a := actionOf(t, r, "tell", "say")
		if r.Status != resource.StatusFailure || a.Status != resource.StatusFailure {
			t.Fatalf("run with format teams: run %s, action %s", r.Status, a.Status)
		}
		if want := `params.format: unknown value "teams" (want "", default or slack)`; !strings.Contains(a.Message, want) {
			t.Errorf("action message %q does not say %q", a.Message, want)
		}
	})

	t.Run("full plugin names and suggestions", func(t *testing.T) {
		s := srv.in(t)
		dir := jobDir(t)
		p := schemaTestFile(t, "names.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: names}
spec:
  params: [{name: dir}]
  jobs:
    - name: build
      actions:
        - {name: full, type: action-standard/run, run: 'echo full > "$DIR/full"', env: {DIR: "${{ params.dir }}"}}
        - {name: short, type: standard/run, run: 'echo short > "$DIR/short"', env: {DIR: "${{ params.dir }}"}}
`)
		s.mustCLI("pipeline", "apply", "-f", p)
		s.mustCLI("pipeline", "run", "names", "-p", "dir="+dir, "--wait")
		for _, f := range []string{"full", "short"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || strings.TrimSpace(string(b)) != f {
				t.Errorf("action %s did not run: %q, %v", f, b, err)
			}
		}

		typo := schemaTestFile(t, "typo.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: typo}
spec:
  jobs:
    - name: build
      actions:
        - {name: a, type: action-standrd/run, run: "true"}
        - {name: b, type: standard/rn, run: "true"}
        - {name: c, type: mtach, pattern: x}
    - name: plan
      uses: job-terrafrom/plan
`)
		out, errOut, code := s.cli("pipeline", "apply", "-f", typo)
		if code == 0 {
			t.Fatal("apply accepted misspelt types")
		}
		errOut = out + errOut
		for _, want := range []string{
			`typo.yaml:8: spec.jobs[0].actions[0].type: unknown action type "action-standrd/run" (did you mean "action-standard/run"?)`,
			`typo.yaml:9: spec.jobs[0].actions[1].type: unknown action type "standard/rn" (did you mean "standard/run"?)`,
			`typo.yaml:10: spec.jobs[0].actions[2].type: unknown action type "mtach" (did you mean "match"?)`,
			`typo.yaml:12: spec.jobs[1].uses: unknown job type "job-terrafrom/plan" (did you mean "job-terraform/plan"?)`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("apply's errors do not say\n  %s\ngot:\n%s", want, errOut)
			}
		}
	})
}

// With the plugin that provides a type down and unable to start again, an
// apply that uses the type is refused within --plugin-wait, naming the
// plugin, rather than waiting for it.
func TestApplyWithItsPluginDown(t *testing.T) {
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
	p := schemaTestFile(t, "down.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: down}
spec:
  jobs:
    - name: build
      actions:
        - {name: a, run: "true"}
`)
	s.mustCLI("pipeline", "apply", "-f", p)
	// The binary changes on disk, then the action plugin stops: it cannot
	// start again (its checksum no longer matches).
	modified := bin + ".new"
	if err := os.WriteFile(modified, append(data, "modified"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(modified, bin); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pluginPID(t, s.cmd.Process.Pid, "action-standard"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p2 := schemaTestFile(t, "down2.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: down}
spec:
  jobs:
    - name: build
      actions:
        - {name: a, run: "echo changed"}
`)
	start := time.Now()
	out, errOut, code := s.cli("pipeline", "apply", "-f", p2)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("apply took %s with --plugin-wait 3s", took)
	}
	if code == 0 {
		t.Fatalf("apply succeeded with the plugin of its action type down: %s", out)
	}
	msg := out + errOut
	if !strings.Contains(msg, `down2.yaml:8: spec.jobs[0].actions[0].type: action type "run": its plugin action-standard is not available, so its params cannot be checked: plugin "action-standard" did not start within 3s`) {
		t.Errorf("apply's error does not name the plugin that is down:\n%s", msg)
	}
}
