package sdktest

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/clientset"
)

// Process is a real plugin process started with the go-plugin handshake,
// as the core starts plugins: gRPC only, automatic mutual TLS on.
type Process struct {
	Client *goplugin.Client
	RPC    goplugin.ClientProtocol
}

// Launch starts cmd as a plugin and stops it when the test ends. When
// cmd.Env is nil the plugin gets a minimal environment (PATH, HOME,
// TMPDIR), not the test's.
func Launch(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := LaunchErr(t, cmd)
	if err != nil {
		t.Fatalf("launch plugin %s: %v", cmd.Path, err)
	}
	return p
}

// LaunchErr is Launch returning the handshake's error instead of failing.
func LaunchErr(t testing.TB, cmd *exec.Cmd) (*Process, error) {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = MinimalEnv()
	}
	logs := &testWriter{t: t}
	t.Cleanup(logs.stop) // registered first, so it runs after Kill
	client := newClient(cmd, logs)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		return nil, err
	}
	return &Process{Client: client, RPC: rpc}, nil
}

// newClient is the go-plugin client of cmd, set up as the core sets up
// its plugins' clients; the plugin's log lines go to logs.
func newClient(cmd *exec.Cmd, logs io.Writer) *goplugin.Client {
	return goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: clientset.VersionedPlugins(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: logs, Level: hclog.Info}),
	})
}

// Dispense returns the client of one category of a launched plugin.
func Dispense[T sdk.Plugin](t testing.TB, p *Process, c sdk.Category) T {
	t.Helper()
	raw, err := p.RPC.Dispense(c.String())
	if err != nil {
		t.Fatalf("dispense %s: %v", c, err)
	}
	out, ok := raw.(T)
	if !ok {
		t.Fatalf("dispensed %s client is %T, which does not implement the category interface", c, raw)
	}
	return out
}

// MinimalEnv is the environment a plugin gets when none is configured.
func MinimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// testWriter sends the plugin's log lines to the test log until the test
// ends; lines that arrive later are dropped instead of panicking.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
