package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/palvella/palvella/core/server"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/api/apitest"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

const buildPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: build
spec:
  jobs:
    - name: test
      actions:
        - name: unit
          run: go test ./...
        - name: lint
          run: go vet ./...
`

// remoteEnv is a real API server on loopback over the in-memory backend,
// and a PALVELLA_HOME whose cli.json points at it, as a local server
// writes it.
type remoteEnv struct {
	b    *apitest.Backend
	url  string
	home string
}

func newRemoteEnv(t *testing.T) *remoteEnv {
	t.Helper()
	t.Setenv("PALVELLA_SERVER", "")
	t.Setenv("PALVELLA_TOKEN", "")
	b := apitest.NewBackend()
	authn := apitest.Tokens{"secret-token": {Name: "alice", Status: authentication.StatusAuthenticated}}
	srv := httptest.NewServer(api.New(b, authn, apitest.Grants{"alice": {"*"}}, api.Options{}))
	t.Cleanup(srv.Close)
	home := t.TempDir()
	cfg, _ := json.Marshal(server.CLIConfig{Server: srv.URL, Token: "secret-token"})
	if err := os.WriteFile(filepath.Join(home, "cli.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return &remoteEnv{b: b, url: srv.URL, home: home}
}

// cli runs the command tree in-process and returns stdout, stderr and the
// exit code run() would give.
func (e *remoteEnv) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &App{Home: e.home, Out: &out, Err: &errOut}
	root := newRootCmd(app)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := 0
	if err := root.ExecuteContext(ctx); err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
		code = 1
		var ec exitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPipelineCommands(t *testing.T) {
	e := newRemoteEnv(t)
	f := writeFile(t, t.TempDir(), "build.yaml", buildPipeline)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "apply", "-f", f}, "pipeline default/build created (v1)"},
		{[]string{"pipeline", "apply", "-f", f}, "pipeline default/build unchanged (v1)"},
	}
	for _, s := range steps {
		out, errOut, code := e.cli(t, s.args...)
		if code != 0 || !strings.Contains(out, s.want) {
			t.Fatalf("%v: exit %d, out %q, err %q; want %q", s.args, code, out, errOut, s.want)
		}
	}
	writeFile(t, filepath.Dir(f), "build.yaml", strings.Replace(buildPipeline, "./...", "./core/...", 1))
	if out, _, code := e.cli(t, "pipeline", "apply", "-f", f); code != 0 || !strings.Contains(out, "updated to v2") {
		t.Fatalf("apply a change: %d %q", code, out)
	}
	out, _, code := e.cli(t, "pipeline", "list")
	if code != 0 || !strings.Contains(out, "build") || !strings.Contains(out, "v2") {
		t.Fatalf("list: %d %q", code, out)
	}
	out, _, code = e.cli(t, "pipeline", "get", "build")
	if code != 0 || !strings.Contains(out, "Versions:") || !strings.Contains(out, "  v1") || !strings.Contains(out, "  v2") {
		t.Fatalf("get: %d %q", code, out)
	}
	out, _, code = e.cli(t, "pipeline", "get", "build", "-o", "json")
	var got struct {
		Pipeline resource.Pipeline          `json:"pipeline"`
		Versions []resource.PipelineVersion `json:"versions"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Pipeline.Version != 2 || len(got.Versions) != 2 {
		t.Fatalf("get -o json: %d %q", code, out)
	}
	if out, _, code := e.cli(t, "pipeline", "delete", "build"); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %q", code, out)
	}
	_, errOut, code := e.cli(t, "pipeline", "get", "build")
	if code != 1 || !strings.Contains(errOut, "no pipeline default/build") {
		t.Fatalf("get after delete: %d %q", code, errOut)
	}
}

func TestPipelineValidatePrintsEveryProblem(t *testing.T) {
	e := newRemoteEnv(t)
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "apiVersion: palvella.dev/v1\nmetadata:\n  name: x\nspec:\n  jobs:\n    - actions: []\n    - actions: []\n")
	out, errOut, code := e.cli(t, "pipeline", "validate", "-f", bad)
	// Checked on this side first: the shape's problems, each with its line.
	want := bad + ":1: missing field \"kind\"\n" + bad + ":6: spec.jobs[0]: missing field \"name\"\n" + bad + ":7: spec.jobs[1]: missing field \"name\"\n"
	if code != 1 || out != want || !strings.Contains(errOut, "3 problems") {
		t.Fatalf("exit %d\nout %q\nwant %q\nerr %q", code, out, want, errOut)
	}
	// apply refuses the same file the same way, and applies nothing.
	if out, _, code := e.cli(t, "pipeline", "apply", "-f", bad); code != 1 || !strings.Contains(out, bad+":6: spec.jobs[0]") || !strings.Contains(out, bad+":7: spec.jobs[1]") {
		t.Fatalf("apply: exit %d, out %q", code, out)
	}
	if out, _, _ := e.cli(t, "pipeline", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a bad file was applied: %q", out)
	}
	good := writeFile(t, dir, "good.yaml", buildPipeline)
	if out, _, code := e.cli(t, "pipeline", "validate", "-f", good); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("valid file: %d %q", code, out)
	}
}

func TestPipelineRunWait(t *testing.T) {
	e := newRemoteEnv(t)
	f := writeFile(t, t.TempDir(), "build.yaml", buildPipeline)
	if _, errOut, code := e.cli(t, "pipeline", "apply", "-f", f); code != 0 {
		t.Fatal(errOut)
	}
	// The "scheduler": end each run once it exists, successfully unless
	// its param says otherwise.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, name := range []string{"build-1", "build-2"} {
				_ = e.b.Update("default", name, func(r *resource.Run) {
					if r.Status.Terminal() {
						return
					}
					start, end := time.Now().Add(-2*time.Second), time.Now()
					to := resource.StatusSuccess
					if r.Params["outcome"] == "fail" {
						to = resource.StatusFailure
						r.Reason = "job test failed"
					}
					r.StartedAt, r.FinishedAt = &start, &end
					for i := range r.Jobs {
						r.Jobs[i].Status, r.Jobs[i].StartedAt, r.Jobs[i].FinishedAt = to, &start, &end
						for k := range r.Jobs[i].Actions {
							r.Jobs[i].Actions[k].Status = to
						}
					}
					resource.SetStatus(&r.Status, &r.Transitions, to, "", end)
				})
			}
		}
	}()
	out, errOut, code := e.cli(t, "pipeline", "run", "build", "-p", "outcome=pass", "--wait", "--poll", "10ms")
	if code != 0 || !strings.Contains(out, "Status:    success") || !strings.Contains(out, "unit") {
		t.Fatalf("passing run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = e.cli(t, "pipeline", "run", "build", "-p", "outcome=fail", "--wait", "--poll", "10ms")
	if code != 1 || !strings.Contains(out, "Status:    failure") || !strings.Contains(errOut, "ended with failure: job test failed") {
		t.Fatalf("failing run: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := e.cli(t, "pipeline", "run", "build", "-p", "bad=1"); code != 1 || !strings.Contains(errOut, "params.bad") {
		t.Fatalf("bad param: exit %d %q", code, errOut)
	}
}

func TestRunCommands(t *testing.T) {
	e := newRemoteEnv(t)
	f := writeFile(t, t.TempDir(), "build.yaml", buildPipeline)
	if _, errOut, code := e.cli(t, "pipeline", "apply", "-f", f); code != 0 {
		t.Fatal(errOut)
	}
	for range 2 {
		if _, errOut, code := e.cli(t, "pipeline", "run", "build"); code != 0 {
			t.Fatal(errOut)
		}
	}
	out, _, code := e.cli(t, "run", "list", "--pipeline", "build")
	if code != 0 || !strings.Contains(out, "build-1") || !strings.Contains(out, "build-2") {
		t.Fatalf("run list: %d %q", code, out)
	}
	start := time.Now().Add(-3 * time.Second)
	end := start.Add(1500 * time.Millisecond)
	_ = e.b.Update("default", "build-1", func(r *resource.Run) {
		r.Status = resource.StatusWaiting
		r.Jobs[0].Status = resource.StatusWaiting
		r.Jobs[0].Actions[0].Status, r.Jobs[0].Actions[0].StartedAt, r.Jobs[0].Actions[0].FinishedAt = resource.StatusSuccess, &start, &end
		r.Jobs[0].Actions[1].Status = resource.StatusRunning
	})
	e.b.SetLog("default", "build-1", "test", "unit", "ok  palvella/core\n")
	e.b.SetLog("default", "build-1", "test", "lint", "vet: clean\n")
	out, _, code = e.cli(t, "run", "get", "build-1")
	if code != 0 || !strings.Contains(out, "unit") || !strings.Contains(out, "1.5s") || !strings.Contains(out, "waiting") {
		t.Fatalf("run get: %d\n%s", code, out)
	}
	out, _, code = e.cli(t, "run", "logs", "build-1")
	want := "==> test / unit (success) <==\nok  palvella/core\n==> test / lint (running) <==\nvet: clean\n" +
		"==> job test waits for approval: palvella run approve build-1 --job test -n default (or run reject)\n"
	if code != 0 || out != want {
		t.Fatalf("run logs: %d\n%q\nwant %q", code, out, want)
	}
	if out, _, _ := e.cli(t, "run", "logs", "build-1", "--action", "lint"); !strings.HasPrefix(out, "==> test / lint (running) <==\nvet: clean\n") || strings.Contains(out, "unit") {
		t.Fatalf("run logs --action: %q", out)
	}
	if _, errOut, code := e.cli(t, "run", "logs", "build-1", "--job", "nope"); code != 1 || !strings.Contains(errOut, `no job "nope"`) {
		t.Fatalf("run logs --job nope: %d %q", code, errOut)
	}
	if out, errOut, code := e.cli(t, "run", "approve", "build-1", "--job", "test"); code != 0 || !strings.Contains(out, "approved job test") {
		t.Fatalf("approve: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := e.cli(t, "run", "reject", "build-1"); code != 1 || !strings.Contains(errOut, "waiting for approval") {
		t.Fatalf("reject with nothing waiting: %d %q", code, errOut)
	}
	if out, _, code := e.cli(t, "run", "cancel", "build-2"); code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %d %q", code, out)
	}
	out, _, code = e.cli(t, "run", "get", "build-2", "-o", "json")
	var run resource.Run
	if code != 0 || json.Unmarshal([]byte(out), &run) != nil || run.Status != resource.StatusCancelled || run.Reason != "cancelled by alice" {
		t.Fatalf("run get -o json: %d %q", code, out)
	}
}

func TestFindingTheServerAndToken(t *testing.T) {
	e := newRemoteEnv(t)
	// cli.json's token is not sent to another server named by a flag.
	other := httptest.NewServer(api.New(apitest.NewBackend(), apitest.Tokens{}, apitest.Grants{}, api.Options{}))
	defer other.Close()
	_, errOut, code := e.cli(t, "run", "list", "--server", other.URL)
	if code != 1 || !strings.Contains(errOut, "missing Authorization") {
		t.Fatalf("other server: %d %q", code, errOut)
	}
	// The environment overrides cli.json, and --token the environment.
	t.Setenv("PALVELLA_TOKEN", "wrong")
	if _, errOut, code := e.cli(t, "run", "list"); code != 1 || !strings.Contains(errOut, "not valid") {
		t.Fatalf("PALVELLA_TOKEN: %d %q", code, errOut)
	}
	if _, errOut, code := e.cli(t, "run", "list", "--token", "secret-token"); code != 0 {
		t.Fatalf("--token: %d %q", code, errOut)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("PALVELLA_SERVER", dead)
	_, errOut, code = e.cli(t, "pipeline", "list")
	if code != 1 || !strings.Contains(errOut, "no Palvella server at "+dead+": start one with `palvella server`") {
		t.Fatalf("no server: %d %q", code, errOut)
	}
}
