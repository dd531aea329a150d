package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/resource"
	"github.com/spf13/pflag"
)

// checkConfig runs `palvella server --check-config` with a configuration
// file's content (none when data is empty) and extra environment.
func checkConfig(t *testing.T, data string, env []string, args ...string) (string, string, int) {
	t.Helper()
	home := t.TempDir()
	if data != "" {
		if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(palvellaBin, append([]string{"server", "--check-config"}, args...)...)
	cmd.Env = append(append(os.Environ(), "PALVELLA_HOME="+home), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

const configHead = "apiVersion: palvella.dev/v1\nkind: ServerConfig\n"

// A flag beats its PALVELLA_* variable, which beats the file, which beats
// the default.
func TestServerConfigPrecedence(t *testing.T) {
	file := configHead + "server:\n  workers: 3\n  listen: 127.0.0.1:9100\n"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"default", nil, nil, "Workers: 4"},
		{"file", nil, nil, "Workers: 3"},
		{"env over file", []string{"PALVELLA_WORKERS=5"}, nil, "Workers: 5"},
		{"flag over env", []string{"PALVELLA_WORKERS=5"}, []string{"--workers", "7"}, "Workers: 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := file
			if tc.name == "default" {
				data = ""
			}
			out, errOut, code := checkConfig(t, data, tc.env, tc.args...)
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, out, errOut, tc.want)
			}
		})
	}
	// --config and PALVELLA_CONFIG name a file elsewhere.
	other := filepath.Join(t.TempDir(), "elsewhere.yaml")
	if err := os.WriteFile(other, []byte(configHead+"server:\n  workers: 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := checkConfig(t, "", nil, "--config", other); code != 0 || !strings.Contains(out, "Workers: 9") || !strings.Contains(out, other) {
		t.Fatalf("--config: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := checkConfig(t, "", []string{"PALVELLA_CONFIG=" + other}); code != 0 || !strings.Contains(out, "Workers: 9") {
		t.Fatalf("PALVELLA_CONFIG: exit %d, %q %q", code, out, errOut)
	}
	// A category's plugin by flag or variable, over the file's.
	withDB := configHead + "database:\n  plugin: database-sqlite\n  config: {history_changes: 50}\n"
	if out, errOut, code := checkConfig(t, withDB, []string{"PALVELLA_STORAGE=storage-filesystem"}, "--database", "database-postgres"); code != 0 ||
		!strings.Contains(out, "database:       database-postgres") || !strings.Contains(out, "storage:        storage-filesystem") {
		t.Fatalf("--database: exit %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := checkConfig(t, "", []string{"PALVELLA_AUTHORIZATION=authorization-nope"}); code == 0 || !strings.Contains(errOut, `no plugin "authorization-nope"`) {
		t.Fatalf("PALVELLA_AUTHORIZATION naming no plugin: exit %d, %q", code, errOut)
	}
	if _, errOut, code := checkConfig(t, "", nil, "--config", other+".missing"); code == 0 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("a --config that does not exist: exit %d, %q", code, errOut)
	}
}

// Every flag of palvella server can be set in the file, and the file's
// schema knows no setting the server lacks.
func TestServerConfigCoversEveryFlag(t *testing.T) {
	cmd := newServerCmd(&App{})
	var schema struct {
		Properties struct {
			Server struct {
				Properties map[string]any `json:"properties"`
			} `json:"server"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(config.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	keys := schema.Properties.Server.Properties
	seen := map[string]bool{"log_level": true} // the root's --log-level
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, n := range notSettings {
			if n == f.Name {
				return
			}
		}
		for _, c := range config.Singletons {
			if c.String() == f.Name {
				return // --database PLUGIN is the file's database.plugin
			}
		}
		k := strings.ReplaceAll(f.Name, "-", "_")
		seen[k] = true
		if _, ok := keys[k]; !ok {
			t.Errorf("flag --%s has no key server.%s in the configuration's schema", f.Name, k)
		}
	})
	for k := range keys {
		if !seen[k] {
			t.Errorf("the schema's server.%s is no flag of palvella server", k)
		}
	}
}

func TestServerConfigRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"unknown key", configHead + "server:\n  wrokers: 3\n", "palvella.yaml:4: server.wrokers: unknown field"},
		{"bad value", configHead + "server:\n  shutdown_grace: soon\n", "palvella.yaml:4: server.shutdown_grace"},
		{"plugin not installed", configHead + "database:\n  plugin: database-sqlit\n", `palvella.yaml:4: database.plugin: no plugin "database-sqlit" is builtin or installed; did you mean "database-sqlite"?`},
		{"plugin of another category", configHead + "storage:\n  plugin: engine-local\n", `storage.plugin: "engine-local" is named as a engine plugin, not a storage plugin`},
		{"plugin settings for no plugin", configHead + "plugins:\n  action-nope:\n    config: {}\n", `palvella.yaml:4: plugins.action-nope: no plugin "action-nope" is builtin or installed; install it with`},
		{"secret from an unset variable", configHead + "plugins:\n  engine-local:\n    env:\n      TOKEN: {from_env: PALVELLA_TEST_UNSET}\n", "palvella.yaml:6: plugins.engine-local.env.TOKEN: from_env: the server's environment has no variable PALVELLA_TEST_UNSET"},
		{"wrong version", "apiVersion: palvella.dev/v9\nkind: ServerConfig\n", "palvella.yaml:1: apiVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := checkConfig(t, tc.data, nil)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q\nstderr %q\nwant %q", code, out, errOut, tc.want)
			}
		})
	}
}

// Named engines: a pipeline's engine: NAME selects one, jobs that name
// none run on the default, and an engine's setup and teardown actions run
// around every job on it, the teardown after a failure too.
func TestServerConfigNamedEnginesSetupTeardown(t *testing.T) {
	dir := jobDir(t)
	trace := filepath.Join(dir, "trace")
	home := t.TempDir()
	conf := configHead + `engines:
  - name: plain
    type: local
    default: true
    environ: {WHERE: plain}
  - name: build
    type: local
    shell: [sh, -c]
    environ: {WHERE: build}
    setup:
      actions:
        - name: prepare
          run: echo "setup $WHERE" >> ` + trace + `
    teardown:
      actions:
        - name: clean
          run: echo "teardown $WHERE" >> ` + trace + `
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, home)
	pipeline := filepath.Join(t.TempDir(), "engines.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(pipeline, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: engines}
spec:
  params:
    - {name: fail, type: boolean, default: false}
  jobs:
    - name: default
      actions:
        - name: say
          run: echo "job $WHERE" >> ` + trace + `
    - name: built
      requires: [default]
      engine: build
      actions:
        - name: say
          run: echo "job $WHERE" >> ` + trace + `
        - name: maybe-fail
          if: ${{ params.fail }}
          run: exit 3
`)
	s.mustCLI("pipeline", "apply", "-f", pipeline)
	s.mustCLI("pipeline", "run", "engines", "--wait")
	got, _ := os.ReadFile(trace)
	if want := "job plain\nsetup build\njob build\nteardown build\n"; string(got) != want {
		t.Fatalf("trace:\n%s\nwant:\n%s", got, want)
	}
	r := s.run("engines-1")
	if a := actionOf(t, r, "built", "setup:prepare"); a.Status != resource.StatusSuccess {
		t.Errorf("setup:prepare = %s", a.Status)
	}
	if a := actionOf(t, r, "built", "teardown:clean"); a.Status != resource.StatusSuccess {
		t.Errorf("teardown:clean = %s", a.Status)
	}
	if logs := s.mustCLI("run", "logs", "engines-1", "--job", "built"); !strings.Contains(logs, "setup:prepare") || !strings.Contains(logs, "teardown:clean") {
		t.Errorf("the job's log does not show its engine's actions:\n%s", logs)
	}

	// A failing job still gets its teardown.
	if err := os.WriteFile(trace, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s.cli("pipeline", "run", "engines", "-p", "fail=true", "--wait")
	r = s.run("engines-2")
	if r.Job("built").Status != resource.StatusFailure {
		t.Fatalf("built = %s, want failure", r.Job("built").Status)
	}
	got, _ = os.ReadFile(trace)
	if want := "job plain\nsetup build\njob build\nteardown build\n"; string(got) != want {
		t.Fatalf("trace after a failure:\n%s\nwant:\n%s", got, want)
	}

	// A job that times out, and one that is cancelled, still get their
	// teardown.
	write(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: slow}
spec:
  jobs:
    - name: built
      engine: build
      timeout: 2s
      actions:
        - name: sleep
          run: sleep 30
`)
	s.mustCLI("pipeline", "apply", "-f", pipeline)
	if err := os.WriteFile(trace, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s.cli("pipeline", "run", "slow", "--wait")
	if r := s.run("slow-1"); r.Job("built").Status != resource.StatusFailure || !strings.Contains(r.Job("built").Reason, "timed out") {
		t.Fatalf("slow-1: built = %s (%s), want timed out", r.Job("built").Status, r.Job("built").Reason)
	}
	if got, _ := os.ReadFile(trace); string(got) != "setup build\nteardown build\n" {
		t.Fatalf("trace after a timeout: %q, want the setup then the teardown", got)
	}
	if err := os.WriteFile(trace, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "run", "slow")
	s.waitRun("slow-2", "running", func(r *resource.Run) bool {
		a := r.Job("built").Action("sleep")
		return a != nil && a.Status == resource.StatusRunning
	})
	s.mustCLI("run", "cancel", "slow-2")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := os.ReadFile(trace); string(got) == "setup build\nteardown build\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("trace after a cancel: %q, want the setup then the teardown", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An engine the server does not have is refused at apply, on its line.
	write(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: engines}
spec:
  jobs:
    - name: x
      engine: biuld
      actions:
        - {name: a, run: "true"}
`)
	out, errOut, code := s.cli("pipeline", "apply", "-f", pipeline)
	errOut += out
	if code == 0 || !strings.Contains(errOut, "engines.yaml:7") || !strings.Contains(errOut, `no engine "biuld"`) || !strings.Contains(errOut, `did you mean "build"?`) {
		t.Fatalf("apply with an unknown engine: exit %d, %s", code, errOut)
	}
}

// buildRenamed builds the renamed test plugin (testdata/renamed) serving a
// first-party plugin of category under the name name.
func buildRenamed(t *testing.T, dir, category, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.category="+category+" -X main.name="+name, "./testdata/renamed")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, msg)
	}
	return out
}

// A configuration that chooses a plugin of another name for every
// single-instance category runs the acceptance scenarios: the core looks
// plugins up by category, never by a first-party name.
func TestServerConfigChoosesEveryCategory(t *testing.T) {
	home, bins := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	cats := []string{"database", "storage", "credential", "authentication", "authorization"}
	paths := make([]string, len(cats))
	for i, c := range cats {
		wg.Add(1)
		go func() { defer wg.Done(); paths[i] = buildRenamed(t, bins, c, c+"-other") }()
	}
	wg.Wait()
	for _, p := range paths {
		must(t, home, "plugin", "add", p, "--allow-unsigned")
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(home, "other.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := configHead + `database:
  plugin: database-other
  config: {path: ` + filepath.Join(home, "other.db") + `}
storage:
  plugin: storage-other
  config: {root: ` + filepath.Join(home, "other-storage") + `}
credential:
  plugin: credential-other
  config:
    path: ` + filepath.Join(home, "other-credentials.db") + `
    key_file: ` + keyFile + `
authentication:
  plugin: authentication-other
  config: {path: ` + filepath.Join(home, "other-tokens.db") + `}
authorization:
  plugin: authorization-other
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, home)
	exampleCI(t, s)
	exampleAlpineCheck(t, s)
	exampleTerraform(t, s)
	s.mustCLI("credential", "set", "deploy-key", "--value", "v")
	if out := s.mustCLI("credential", "list"); !strings.Contains(out, "deploy-key") {
		t.Fatalf("credential list: %s", out)
	}
	s.mustCLI("token", "create", "viewer", "--role", "viewer")

	// Each chosen plugin kept its state where its configuration said, and
	// none of the builtins of those categories ran.
	for _, f := range []string{"other.db", "other-storage", "other-credentials.db", "other-tokens.db"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"palvella.db", "storage", "credentials.db", "tokens.db"} {
		if _, err := os.Stat(filepath.Join(home, f)); err == nil {
			t.Errorf("%s exists: a builtin plugin ran in place of the one chosen", f)
		}
	}
}

// A named engine's type and parameters are checked against its engine
// plugin when the server starts: the server refuses to start, naming the
// lines.
func TestServerRefusesEngineParamsItsTypeRefuses(t *testing.T) {
	home := t.TempDir()
	conf := configHead + "engines:\n  - name: build\n    type: local\n    shell: \"bash -c\"\n    colour: blue\n  - name: box\n    type: dockr\n"
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(palvellaBin, "server", "--listen", "127.0.0.1:0", "--webhook-listen", "off")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the server started:\n%s", out)
	}
	for _, want := range []string{
		"palvella.yaml:7: engines[0].colour: unknown field",
		"palvella.yaml:6: engines[0].shell: got string, want array",
		`palvella.yaml:9: engines[1].type: no engine plugin provides engine type "dockr"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
