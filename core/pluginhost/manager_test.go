package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", testPlugin, "./testdata/testplugin").CombinedOutput()
	if err != nil {
		panic("build test plugin: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newManager(t *testing.T) *pluginhost.Manager {
	t.Helper()
	m, err := pluginhost.New(pluginhost.Options{
		Logger:        hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn}),
		CheckInterval: 20 * time.Millisecond,
		MinBackoff:    20 * time.Millisecond,
		StartTimeout:  10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Shutdown)
	return m
}

func addTestPlugin(t *testing.T, m *pluginhost.Manager, path string, args ...string) *pluginhost.Plugin {
	t.Helper()
	sum, err := pluginhost.SHA256File(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Add(pluginhost.Spec{Name: "test", Source: pluginhost.SourcePath, Path: path, Args: args, SHA256: sum,
		Env: map[string]string{"PLUGIN_SETTING": "configured"}, Config: map[string]any{"greeting": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func credClient(t *testing.T, p *pluginhost.Plugin) credential.Credential {
	t.Helper()
	c, err := pluginhost.Client[credential.Credential](context.Background(), p, sdk.CategoryCredential)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}

func value(t *testing.T, c credential.Credential, name string) string {
	t.Helper()
	s, err := c.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return string(s.Data["value"])
}

func TestLaunchDescribeConfigureAndCall(t *testing.T) {
	m := newManager(t)
	p := addTestPlugin(t, m, testPlugin)
	man, err := p.Manifest(context.Background())
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if man.Name != "testplugin" || man.Version != "1.2.3" || !man.Provides(sdk.CategoryCredential) {
		t.Fatalf("manifest = %+v, want testplugin 1.2.3 providing credential", man)
	}
	c := credClient(t, p)
	if got := value(t, c, "config"); got != "map[greeting:hi]" {
		t.Errorf("plugin got config %q, want the configured one", got)
	}
	st := p.Status()
	if st.State != pluginhost.StateRunning || st.PID == 0 || st.Protocol != 1 {
		t.Errorf("status = %+v, want running with a pid and protocol 1", st)
	}
	// Typed errors survive the wire.
	_, err = c.Get(context.Background(), "missing")
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrNotFound) || !errors.As(err, &typed) || typed.Field != "name" {
		t.Errorf("Get(missing) = %v, want sdk.ErrNotFound about field name", err)
	}
}

func TestPluginGetsOnlyItsConfiguredEnvironment(t *testing.T) {
	t.Setenv("PALVELLA_SECRET_KEY", "host-secret-must-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
	m := newManager(t)
	c := credClient(t, addTestPlugin(t, m, testPlugin))
	env := value(t, c, "env")
	for _, leak := range []string{"host-secret-must-not-leak", "also-secret"} {
		if strings.Contains(env, leak) {
			t.Errorf("plugin environment contains the host's secret %q:\n%s", leak, env)
		}
	}
	if !strings.Contains(env, "PLUGIN_SETTING=configured") {
		t.Errorf("plugin environment lacks its configured variable:\n%s", env)
	}
	if !strings.Contains(env, "GOMAXPROCS=1") {
		t.Errorf("plugin environment lacks the default GOMAXPROCS=1:\n%s", env)
	}
	if !strings.Contains(env, "PATH=") {
		t.Errorf("plugin environment lacks PATH:\n%s", env)
	}
}

func TestKilledMidCallFailsInFlightAndRestarts(t *testing.T) {
	m := newManager(t)
	p := addTestPlugin(t, m, testPlugin)
	c := credClient(t, p)
	pid, _ := strconv.Atoi(value(t, c, "pid"))

	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "block")
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the call reach the plugin
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, sdk.ErrPluginStopped) {
			t.Fatalf("in-flight call error = %v, want sdk.ErrPluginStopped", err)
		}
		if !strings.Contains(err.Error(), "plugin stopped") {
			t.Errorf("in-flight call error %q does not say the plugin stopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight call did not return after the plugin was killed")
	}

	// New calls work once the plugin is back.
	deadline := time.Now().Add(10 * time.Second)
	for st := p.Status(); st.Restarts < 1 || st.State != pluginhost.StateRunning; st = p.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin did not come back: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := pluginhost.Client[credential.Credential](ctx, p, sdk.CategoryCredential)
	if err != nil {
		t.Fatalf("client after restart: %v", err)
	}
	newPID, _ := strconv.Atoi(value(t, c2, "pid"))
	if newPID == pid || newPID == 0 {
		t.Fatalf("pid after restart = %d, want a new process (old %d)", newPID, pid)
	}
	st := p.Status()
	if st.Restarts != 1 || st.State != pluginhost.StateRunning || !(strings.Contains(st.LastError, "exited") || strings.Contains(st.LastError, "stopped answering")) {
		t.Errorf("status after restart = %+v, want running, 1 restart, last error about the exit", st)
	}
}

func TestChangedBinaryIsRefused(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "plugin")
	data, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	m := newManager(t)
	p := addTestPlugin(t, m, bin) // records the sha256 of the good binary
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	err = p.Start(context.Background())
	if !errors.Is(err, pluginhost.ErrChecksum) {
		t.Fatalf("start of a changed binary: error = %v, want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "changed after install") || !strings.Contains(err.Error(), "palvella plugin add") {
		t.Errorf("message %q does not say the binary changed and what to do", err)
	}
	if st := p.Status(); st.State != pluginhost.StateFailed || st.PID != 0 {
		t.Errorf("status = %+v, want failed and no process", st)
	}
}

func TestHandshakeFailuresHaveTheirOwnMessages(t *testing.T) {
	cases := []struct {
		mode    string
		problem pluginhost.HandshakeProblem
		is      error
		want    []string
	}{
		{"stdout-before", pluginhost.ProblemOutputBefore, pluginhost.ErrHandshake,
			[]string{`printed "hello from a plugin that prints too early" on stdout before its handshake line`, "log to stderr"}},
		{"wrong-cookie", pluginhost.ProblemWrongCookie, pluginhost.ErrHandshake,
			[]string{"refused Palvella's handshake cookie", "not a Palvella plugin"}},
		{"protocol-2", pluginhost.ProblemProtocol, pluginhost.ErrProtocol,
			[]string{"speaks plugin protocol 2; this Palvella speaks 1"}},
		{"exit", pluginhost.ProblemExited, pluginhost.ErrHandshake,
			[]string{"exited before the handshake", "cannot start: missing something"}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			m := newManager(t)
			p := addTestPlugin(t, m, testPlugin, tc.mode)
			err := p.Start(context.Background())
			var le *pluginhost.LaunchError
			if !errors.As(err, &le) {
				t.Fatalf("error = %v, want a *LaunchError", err)
			}
			if le.Problem != tc.problem || !errors.Is(err, tc.is) {
				t.Errorf("problem = %s (is %v: %v), want %s", le.Problem, tc.is, errors.Is(err, tc.is), tc.problem)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestConfigurationRejected(t *testing.T) {
	m := newManager(t)
	sum, _ := pluginhost.SHA256File(testPlugin)
	p, err := m.Add(pluginhost.Spec{Name: "picky", Source: pluginhost.SourcePath, Path: testPlugin, SHA256: sum,
		Config: map[string]any{"reject": "shell must be an absolute path"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(context.Background())
	if !errors.Is(err, pluginhost.ErrConfig) || !strings.Contains(err.Error(), "config.reject: shell must be an absolute path") {
		t.Fatalf("error = %v, want ErrConfig naming the field and the problem", err)
	}
}

func TestShutdownKillsEveryPlugin(t *testing.T) {
	m, err := pluginhost.New(pluginhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := pluginhost.SHA256File(testPlugin)
	var pids []int
	for _, name := range []string{"a", "b", "c"} {
		p, err := m.Add(pluginhost.Spec{Name: name, Source: pluginhost.SourcePath, Path: testPlugin, SHA256: sum})
		if err != nil {
			t.Fatal(err)
		}
		c := credClient(t, p)
		pid, _ := strconv.Atoi(value(t, c, "pid"))
		pids = append(pids, pid)
	}
	m.Shutdown()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d still alive after Shutdown", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := m.Add(pluginhost.Spec{Name: "late", Path: testPlugin, SHA256: sum}); !errors.Is(err, pluginhost.ErrShutdown) {
		t.Errorf("Add after Shutdown = %v, want ErrShutdown", err)
	}
}

func TestConcurrentCallsShareOneLaunch(t *testing.T) {
	m := newManager(t)
	p := addTestPlugin(t, m, testPlugin)
	var wg sync.WaitGroup
	pids := make([]string, 8)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pluginhost.Client[credential.Credential](context.Background(), p, sdk.CategoryCredential)
			if err != nil {
				t.Error(err)
				return
			}
			s, err := c.Get(context.Background(), "pid")
			if err != nil {
				t.Error(err)
				return
			}
			pids[i] = string(s.Data["value"])
		}()
	}
	wg.Wait()
	for _, pid := range pids[1:] {
		if pid != pids[0] {
			t.Fatalf("concurrent first calls launched several processes: %v", pids)
		}
	}
}

func TestOnCallReportsEveryCall(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	m, err := pluginhost.New(pluginhost.Options{OnCall: func(plugin, method string, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, fmt.Sprintf("%s %s %v", plugin, method, err != nil))
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Shutdown)
	c := credClient(t, addTestPlugin(t, m, testPlugin))
	value(t, c, "pid")
	_, _ = c.Get(context.Background(), "missing")
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(calls, "\n")
	for _, want := range []string{
		"test /palvella.plugin.v1.PluginService/Configure false",
		"test /palvella.credential.v1.CredentialService/Get false",
		"test /palvella.credential.v1.CredentialService/Get true",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("calls reported:\n%s\nlack %q", joined, want)
		}
	}
}
