package nomad

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/nomad/nomadtest"
)

// serveEnv makes the test binary serve the plugin instead of running tests,
// so a test can start it as a real plugin process (and kill it).
const serveEnv = "PALVELLA_TEST_SERVE_ENGINE_NOMAD"

func TestMain(m *testing.M) {
	sdktest.EngineHostMain()
	if os.Getenv(serveEnv) == "1" {
		os.Exit(Serve())
	}
	nomadtest.Main(m)
}

var sharedState string

func stateDir(t testing.TB) string {
	if sharedState == "" {
		sharedState = t.TempDir()
	}
	return sharedState
}

// newEngine returns an engine on the agent (the shared one when nil), with
// raw_exec as its driver and its lock files in the test's directory.
func newEngine(t testing.TB, a *nomadtest.Agent, extra map[string]any) *Plugin {
	t.Helper()
	if a == nil {
		a = nomadtest.Shared(t)
	}
	cfg := map[string]any{"address": a.Addr, "driver": "raw_exec", "kill_grace": "1s", "state_dir": stateDir(t)}
	for k, v := range extra {
		cfg[k] = v
	}
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(resp.Diagnostics) > 0 {
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	return p
}

func testClient(t testing.TB, a *nomadtest.Agent) *api.Client {
	t.Helper()
	if a == nil {
		a = nomadtest.Shared(t)
	}
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) engine.Engine { return newEngine(t, nil, nil) }, engine.Service, sdktest.EngineSuite)
}

func setup(t *testing.T, p *Plugin, opts map[string]any) *engine.Workspace {
	t.Helper()
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "1", Job: "build", Options: opts})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { p.Teardown(context.Background(), ws.ID) })
	return ws
}

func execText(t *testing.T, p *Plugin, req *engine.ExecRequest) (*engine.ExecResult, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	res, err := p.Exec(context.Background(), req, func(s string, b []byte) error {
		if s == engine.Stdout {
			out.Write(b)
		} else {
			errOut.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Exec %q%q: %v", req.Script, req.Command, err)
	}
	return res, out.String(), errOut.String()
}

// A Palvella job is one Nomad batch job, marked with its engine, owner and
// job, with the engine's parameters; Teardown stops and purges it.
func TestJobIsANomadBatchJobPurgedAtTeardown(t *testing.T) {
	p := newEngine(t, nil, map[string]any{"environ": map[string]any{"FROM_CONFIG": "c", "OVERRIDDEN": "config"}})
	c := testClient(t, nil)
	ctx := context.Background()
	ws := setup(t, p, map[string]any{"environ": map[string]any{"FROM_ENGINE": "e"}, "memory": "128m", "cpu": float64(200)})
	job, _, err := c.Jobs().Info(jobPrefix+ws.ID, nil)
	if err != nil {
		t.Fatalf("the workspace's Nomad job: %v", err)
	}
	task := job.TaskGroups[0].Tasks[0]
	if *job.Type != "batch" || task.Driver != "raw_exec" || *task.Resources.MemoryMB != 128 || *task.Resources.CPU != 200 {
		t.Errorf("job %s: type %s, driver %s, memory %d, cpu %d; want batch, raw_exec, 128, 200", *job.ID, *job.Type, task.Driver, *task.Resources.MemoryMB, *task.Resources.CPU)
	}
	for k, want := range map[string]string{metaEngine: "nomad", metaOwner: p.Owner(), metaWorkspace: ws.ID, metaPipeline: "p", metaRun: "1", metaJob: "build"} {
		if job.Meta[k] != want {
			t.Errorf("job meta %s = %q, want %q", k, job.Meta[k], want)
		}
	}
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{"OVERRIDDEN": "action"},
		Script: `echo "$FROM_CONFIG $FROM_ENGINE $OVERRIDDEN ${NOMAD_ALLOC_ID-no-nomad-env}"; pwd`})
	if want := "c e action no-nomad-env\n" + ws.Workdir + "\n"; res.ExitCode != 0 || out != want {
		t.Fatalf("exit %d, output %q, want %q (environ under the action's env, none of the task's own, in the workdir)", res.ExitCode, out, want)
	}
	if err := p.Teardown(ctx, ws.ID); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if _, _, err := c.Jobs().Info(jobPrefix+ws.ID, nil); !isNotFound(err) {
		t.Fatalf("the Nomad job after Teardown: %v, want it purged", err)
	}
	if _, err := os.Stat(ws.Workdir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the workspace %s after Teardown: %v, want it gone", ws.Workdir, err)
	}
}

// A step's background processes do not outlive it, and a timeout or a
// Cancel stops every process of the command.
func TestNothingOfAStepSurvivesIntoTheNext(t *testing.T) {
	p := newEngine(t, nil, nil)
	ws := setup(t, p, nil)
	alive := func(pidFile string) bool {
		b, err := os.ReadFile(ws.Workdir + "/" + pidFile)
		if err != nil {
			t.Fatalf("read %s: %v", pidFile, err)
		}
		// raw_exec runs on this host: the pid is one of ours.
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
		return err == nil && !strings.Contains(string(stat), ") Z ")
	}
	waitDead := func(pidFile, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for alive(pidFile) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the background process still runs", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	res, _, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 300 & echo $! > bg.pid"})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	waitDead("bg.pid", "after the step ended")

	// Children that leave the command's session, some caught in the
	// middle of their exec when the command ends (one look at /proc
	// missed those).
	arg := fmt.Sprint(3000 + os.Getpid()%1000)
	sleepers := func() []string {
		var l []string
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range procs {
			cmd, _ := os.ReadFile(d + "/cmdline")
			stat, _ := os.ReadFile(d + "/stat")
			if string(cmd) == "sleep\x00"+arg+"\x00" && !strings.Contains(string(stat), ") Z ") {
				l = append(l, d)
			}
		}
		return l
	}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "for i in 1 2 3 4 5 6 7 8; do (setsid sh -c 'exec sleep " + arg + "' &); done"},
			func(string, []byte) error { return nil })
		cancel()
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("round %d: %v, %+v (processes left running hold the command's end?)", i, err, res)
		}
		if l := sleepers(); len(l) > 0 {
			t.Fatalf("round %d: processes of the previous command still run: %v", i, l)
		}
	}

	start := time.Now()
	res, _, _ = execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 300 & echo $! > timed.pid; wait", Timeout: 500 * time.Millisecond})
	if !res.TimedOut || res.ExitCode != 143 || time.Since(start) > 15*time.Second {
		t.Fatalf("timed out exec: %+v after %s, want TimedOut with exit 143 (SIGTERM)", res, time.Since(start))
	}
	waitDead("timed.pid", "after the timeout")
}

// Bad parameters are refused, naming the field, and a token never shows
// in a message.
func TestBadParametersNameTheField(t *testing.T) {
	for _, tc := range []struct {
		raw   map[string]any
		field string
	}{
		{map[string]any{"driver": "exec"}, "config.driver"},
		{map[string]any{"address": "127.0.0.1:4646"}, "config.address"},
		{map[string]any{"memory": "lots"}, "config.memory"},
		{map[string]any{"cpu": 1.5}, "config.cpu"},
		{map[string]any{"datacenters": []any{}}, "config.datacenters"},
		{map[string]any{"shell": []any{"sh", ""}}, "config.shell[1]"},
		{map[string]any{"environ": map[string]any{"A=B": "x"}}, "config.environ.A=B"},
		{map[string]any{"kill_grace": "soon"}, "config.kill_grace"},
		{map[string]any{"start_timeout": "0s"}, "config.start_timeout"},
		{map[string]any{"imagee": "x"}, "config.imagee"},
		{map[string]any{"token": 12345}, "config.token"},
	} {
		_, diags := parseConfig(tc.raw)
		if len(diags) != 1 || diags[0].Field != tc.field || diags[0].Severity != sdk.SeverityError {
			t.Errorf("config %v: diagnostics %+v, want one error on %s", tc.raw, diags, tc.field)
		}
		if strings.Contains(diags[0].Summary, "12345") {
			t.Errorf("the token's value is in the message: %s", diags[0].Summary)
		}
	}
	p := newEngine(t, nil, nil)
	_, err := p.Setup(context.Background(), &engine.SetupRequest{Job: "x", Options: map[string]any{"driver": "docker"}})
	if !errors.Is(err, sdk.ErrInvalidArgument) || !strings.Contains(err.Error(), "needs an image") {
		t.Fatalf("Setup of the docker driver without an image: %v", err)
	}
}

// A job no client can run (here: the docker driver on an agent without a
// Docker daemon) fails its Setup with the scheduler's reason, and leaves no
// job behind.
func TestUnplaceableJobIsAClearError(t *testing.T) {
	p := newEngine(t, nil, nil)
	_, err := p.Setup(context.Background(), &engine.SetupRequest{Job: "x", Options: map[string]any{"driver": "docker", "image": "busybox:1"}})
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !strings.Contains(err.Error(), "Nomad cannot place job") || !strings.Contains(err.Error(), "docker") {
		t.Fatalf("Setup on a cluster without the docker driver: %v, want the placement failure", err)
	}
	waitNoJobs(t, nomadtest.Shared(t), p.Owner())
}

// waitNoJobs waits until the agent has no job of the owner.
func waitNoJobs(t *testing.T, a *nomadtest.Agent, owner string) {
	t.Helper()
	c := testClient(t, a)
	deadline := time.Now().Add(20 * time.Second)
	for {
		jobs, _, err := c.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, &api.QueryOptions{Prefix: jobPrefix})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, j := range jobs {
			if j.Meta[metaOwner] == owner {
				left = append(left, j.ID+" "+j.Status)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs left on the agent: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A command's variables (credentials, often) reach it through a pipe,
// never a command line, which any user of the host can read.
func TestVariablesStayOutOfCommandLines(t *testing.T) {
	p := newEngine(t, nil, nil)
	ws := setup(t, p, nil)
	secret := "s3cr3t-" + randomID(8)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "s", Env: map[string]string{"TOKEN": secret},
			Script: `echo $$ > sh.pid; echo ready; sleep 60`}, func(s string, b []byte) error {
			if strings.Contains(string(b), "ready") {
				close(ready)
			}
			return nil
		})
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Exec ended early: %v", err)
	}
	pid, err := os.ReadFile(ws.Workdir + "/sh.pid")
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/environ")
	if err != nil || !strings.Contains(string(env), "TOKEN="+secret) {
		t.Fatalf("the command's environment lacks its variable: %v", err)
	}
	lines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range lines {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), secret) {
			t.Errorf("%s holds the variable's value: %q", f, b)
		}
	}
	if err := p.Cancel(context.Background(), ws.ID, "s"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
