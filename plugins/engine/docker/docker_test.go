package docker

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// serveEnv makes the test binary serve the plugin instead of running tests,
// so a test can start it as a real plugin process (and kill it).
const serveEnv = "PALVELLA_TEST_SERVE_ENGINE_DOCKER"

func TestMain(m *testing.M) {
	sdktest.EngineHostMain()
	if os.Getenv(serveEnv) == "1" {
		os.Exit(Serve())
	}
	dockertest.Main(m)
}

// newEngine returns an engine on the test daemon, with the test image as
// its default, and its lock files in the test's directory.
func newEngine(t testing.TB, extra map[string]any) *Plugin {
	t.Helper()
	d := dockertest.Shared(t)
	cfg := map[string]any{"host": d.Host, "image": dockertest.Image, "kill_grace": "1s", "state_dir": stateDir(t)}
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
	// Last of the test's cleanups: once its workspaces are torn down and
	// their removals drained, nothing of the engine's is left.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
		c, err := d.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if cs, ns, vs := labelled(t, c, labelOwner+"="+p.Owner()); len(cs)+len(ns)+len(vs) > 0 {
			t.Errorf("left on the daemon after the test: containers %v, networks %v, volumes %v", cs, ns, vs)
		}
	})
	return p
}

var sharedState string

func stateDir(t testing.TB) string {
	if sharedState == "" {
		sharedState = t.TempDir()
	}
	return sharedState
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) engine.Engine { return newEngine(t, nil) }, engine.Service, sdktest.EngineSuite)
}

// labelled lists what the engine made on the daemon: containers,
// networks and volumes with its label (and the given one, if any).
func labelled(t testing.TB, c *client.Client, labels ...string) (containers, networks, volumes []string) {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", append([]string{labelEngine + "=" + TypeName}, labels...)...)
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cs.Items {
		containers = append(containers, x.ID[:12]+" "+string(x.State))
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ns.Items {
		networks = append(networks, x.Name)
	}
	vs, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range vs.Items {
		volumes = append(volumes, x.Name)
	}
	return
}

func testClient(t testing.TB) *client.Client {
	c, err := dockertest.Shared(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitNone waits until nothing labelled with label is left on the daemon.
func waitNone(t testing.TB, c *client.Client, label, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cs, ns, vs := labelled(t, c, label)
		if len(cs)+len(ns)+len(vs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: left on the daemon: containers %v, networks %v, volumes %v", what, cs, ns, vs)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
		t.Fatalf("Exec %q: %v", req.Script, err)
	}
	return res, out.String(), errOut.String()
}

func TestJobRunsInItsImageWithItsParameters(t *testing.T) {
	p := newEngine(t, map[string]any{"environ": map[string]any{"FROM_CONFIG": "c", "OVERRIDDEN": "config"}})
	ctx := context.Background()
	ws, err := p.Setup(ctx, &engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "1", Job: "build",
		Options: map[string]any{
			"image":       dockertest.Image,
			"environ":     map[string]any{"FROM_ENGINE": "e"},
			"memory":      "64m",
			"pids_limit":  float64(50),
			"network":     "none",
			"config.json": map[string]any{"proxies": map[string]any{"default": map[string]any{"httpProxy": "http://proxy.invalid:3128", "noProxy": "localhost"}}},
		}})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { p.Teardown(ctx, ws.ID) })
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{"OVERRIDDEN": "action"},
		Script: `echo "$FROM_CONFIG $FROM_ENGINE $OVERRIDDEN $HTTP_PROXY $http_proxy $NO_PROXY"
cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max
ls /sys/class/net | tr '\n' ' '; echo
test -f /.dockerenv && echo in-a-container`})
	want := "c e action http://proxy.invalid:3128 http://proxy.invalid:3128 localhost\n67108864\n50\nlo \nin-a-container\n"
	if res.ExitCode != 0 || out != want {
		t.Fatalf("exit %d, output %q, want %q: environ, proxies, memory and pids limits, no network, in a container", res.ExitCode, out, want)
	}
}

func TestEachJobHasItsOwnNetwork(t *testing.T) {
	p := newEngine(t, nil)
	ctx := context.Background()
	a := setup(t, p, nil)
	b := setup(t, p, nil)
	_, aIf, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: a.ID, Script: "ip -4 -o addr show eth0 | awk '{print $4}'"})
	_, bIf, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: b.ID, Script: "ip -4 -o addr show eth0 | awk '{print $4}'"})
	if aIf == "" || aIf == bIf {
		t.Fatalf("job networks: %q and %q, want two different subnets", aIf, bIf)
	}
	c := testClient(t)
	_, ns, _ := labelled(t, c, labelWorkspace+"="+a.ID)
	if len(ns) != 1 {
		t.Fatalf("networks of workspace %s: %v, want one", a.ID, ns)
	}
	if err := p.Teardown(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	waitNone(t, c, labelWorkspace+"="+a.ID, "after Teardown")
}

func setup(t *testing.T, p *Plugin, opts map[string]any) *engine.Workspace {
	t.Helper()
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Job: t.Name(), Options: opts})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { p.Teardown(context.Background(), ws.ID) })
	return ws
}

// Timeout, Cancel and the caller going away stop a command and everything
// it started: for a command of the job's image, run in the job's
// container, its processes are gone (and no container was made for it);
// for a command in another image, its own container is removed.
func TestCancelAndTimeoutStopTheCommand(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	c := testClient(t)
	commandContainers := func() []string {
		cs, _, _ := labelled(t, c, labelWorkspace+"="+ws.ID, labelRole+"=command")
		return cs
	}
	// The same image under another name: its commands get containers of
	// their own.
	other := "palvella-test/busybox:other"
	if _, err := c.ImageTag(context.Background(), client.ImageTagOptions{Source: dockertest.Image, Target: other}); err != nil {
		t.Fatal(err)
	}
	// sleepers lists the test's sleeps still running in the job's
	// container; a zombie not yet reaped does not count.
	sleepers := func() []string {
		_, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID,
			Script: `ps -o stat,args | grep -v grep | grep -v '^Z' | grep 'sleep 6[01]' || true`})
		return strings.Fields(out)
	}

	for _, tc := range []struct {
		image  string
		sleep  string
		left   func() []string
		during int // command containers while it runs
	}{
		{"", "sleep 60", sleepers, 0},
		{other, "sleep 61", commandContainers, 1},
	} {
		t.Run("image="+cmp.Or(tc.image, "job's"), func(t *testing.T) {
			// Timeout.
			start := time.Now()
			res, _, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Image: tc.image, Script: tc.sleep + " & " + tc.sleep, Timeout: 300 * time.Millisecond})
			if !res.TimedOut || res.ExitCode == 0 || time.Since(start) > 15*time.Second {
				t.Fatalf("timed out exec: %+v after %s", res, time.Since(start))
			}
			waitGone(t, tc.left, "after a timeout")

			// Cancel.
			ready := make(chan struct{})
			done := make(chan *engine.ExecResult, 1)
			go func() {
				res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "x", Image: tc.image, Script: "echo ready; " + tc.sleep},
					func(s string, b []byte) error {
						if strings.Contains(string(b), "ready") {
							close(ready)
						}
						return nil
					})
				if err != nil {
					t.Errorf("Exec: %v", err)
				}
				done <- res
			}()
			<-ready
			if n := len(commandContainers()); n != tc.during {
				t.Fatalf("while the command runs: %d command containers, want %d", n, tc.during)
			}
			if err := p.Cancel(context.Background(), ws.ID, "x"); err != nil {
				t.Fatal(err)
			}
			if res := <-done; res == nil || !res.Cancelled {
				t.Fatalf("cancelled exec: %+v", res)
			}
			waitGone(t, tc.left, "after Cancel")

			// The caller going away.
			ctx, cancel := context.WithCancel(context.Background())
			go func() { time.Sleep(500 * time.Millisecond); cancel() }()
			if _, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Image: tc.image, Script: tc.sleep}, nil); !errors.Is(err, context.Canceled) {
				t.Fatalf("Exec whose context ended: %v", err)
			}
			waitGone(t, tc.left, "after the context ended")
			waitGone(t, commandContainers, "after the three stops")
		})
	}
}

// A command's background children do not outlive it: the next command of
// the job does not see them (as when each command had its own container).
// TestBackgroundChildrenEndWithTheirCommand starts children that leave the
// command's process group and session, some caught in the middle of their
// exec when the command ends (one look at /proc missed those: ~1 round in
// 15), and a command that starts them until it is cancelled.
func TestBackgroundChildrenEndWithTheirCommand(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	left := func() string {
		t.Helper()
		res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: `ps -o stat,args | grep -v grep | grep -v '^Z' | grep 'sleep 6[234]' || true`})
		if res.ExitCode != 0 {
			t.Fatalf("ps: exit %d", res.ExitCode)
		}
		return strings.TrimSpace(out)
	}
	// The first round is the job's first command (the container's first
	// process), the others are execs.
	for i := range 10 {
		res, _, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 62 & for i in 1 2 3 4 5 6 7 8; do (setsid sh -c 'exec sleep 63' &); done; echo started"})
		if res.ExitCode != 0 {
			t.Fatalf("exit %d: %s", res.ExitCode, errOut)
		}
		if out := left(); out != "" {
			t.Fatalf("round %d: processes of the previous command still run: %q", i, out)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "forks", Script: "echo ready; while :; do (setsid sh -c 'exec sleep 64' &); done"},
			func(s string, b []byte) error {
				if strings.Contains(string(b), "ready") {
					time.AfterFunc(300*time.Millisecond, cancel)
				}
				return nil
			})
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("cancelled command did not end")
	}
	if out := left(); out != "" {
		t.Fatalf("processes of the cancelled command still run: %q", out)
	}
}

// A cancelled command's processes get SIGTERM once, however many times
// the stop looks through /proc (a second SIGTERM means "stop now" to some
// programs), and SIGKILL after the grace period when they stay. Both the
// job's first command and an exec.
func TestCancelSignalsEachProcessOnce(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	for i, name := range []string{"first", "exec"} {
		t.Run(name, func(t *testing.T) {
			file := fmt.Sprintf("/tmp/terms-%d", i)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Variables that busybox sh puts before the marker in a
			// child's environment (its table of variables is hashed):
			// busybox's grep -F found the marker only as the first.
			res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: name,
				Env:    map[string]string{"AA": "1", "N": "2", "U": "3"},
				Script: "trap 'echo term >> " + file + "' TERM; echo ready; while :; do sleep 1 & wait; done"},
				func(s string, b []byte) error {
					if strings.Contains(string(b), "ready") {
						time.AfterFunc(200*time.Millisecond, cancel)
					}
					return nil
				})
			if err == nil && (res == nil || res.ExitCode == 0) {
				t.Fatalf("cancelled command: %+v, want it stopped", res)
			}
			_, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "cat " + file})
			if got := strings.Count(out, "term"); got != 1 {
				t.Fatalf("the command's shell got SIGTERM %d times, want once (%q)", got, out)
			}
		})
	}
}

func waitGone(t *testing.T, list func() []string, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := list()
		if len(l) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: containers still there: %v", what, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAbsentImageIsAClearError(t *testing.T) {
	p := newEngine(t, nil)
	_, err := p.Setup(context.Background(), &engine.SetupRequest{Job: "x", Options: map[string]any{"image": "palvella-test/no-such-image:1"}})
	if !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Setup with an absent image: %v, want a failed precondition", err)
	}
	for _, want := range []string{`image "palvella-test/no-such-image:1" is not on the Docker daemon`, "could not be pulled"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_, err = p.Setup(context.Background(), &engine.SetupRequest{Job: "x", Options: map[string]any{"image": "palvella-test/no-such-image:1", "pull": "never"}})
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !strings.Contains(err.Error(), "pull is never") {
		t.Fatalf("Setup with an absent image and pull never: %v", err)
	}
	waitNone(t, testClient(t), labelOwner+"="+p.Owner(), "after failed setups")
}

func TestProgramNotFoundIsExit127(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	res, _, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"no-such-program"}})
	if res.ExitCode != 127 || !strings.Contains(errOut, "no-such-program") {
		t.Fatalf("missing program: exit %d, stderr %q, want 127 naming it", res.ExitCode, errOut)
	}
}

func TestVolumesAreMounted(t *testing.T) {
	p := newEngine(t, nil)
	dir := t.TempDir()
	ws := setup(t, p, map[string]any{"volumes": []any{
		map[string]any{"name": dir, "path": "/host-dir"},
		map[string]any{"name": "palvella-test-cache", "path": "/cache"},
	}})
	res, _, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo from-job > /host-dir/f; echo kept > /cache/f"})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, errOut)
	}
	ws2 := setup(t, p, map[string]any{"volumes": []any{map[string]any{"name": "palvella-test-cache", "path": "/cache", "read_only": true}}})
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws2.ID, Script: "cat /cache/f; touch /cache/g 2>/dev/null || echo read-only"})
	if out != "kept\nread-only\n" {
		t.Fatalf("named volume in the next job: %q, want its content and read-only", out)
	}
	b, err := readFile(dir + "/f")
	if err != nil || b != "from-job\n" {
		t.Fatalf("host directory: %q %v", b, err)
	}
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}
