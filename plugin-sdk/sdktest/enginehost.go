//go:build unix

package sdktest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// engineHostEnv makes a test binary the host of an engine plugin
// (EngineHostMain); its value is the EngineHostSpec as JSON.
const engineHostEnv = "PALVELLA_SDKTEST_ENGINE_HOST"

// EngineHostSpec says what an engine host does: launch the plugin,
// configure it, set up one workspace and run one command in it, as a
// worker does with a job.
type EngineHostSpec struct {
	// Path, Args and Env start the plugin process; it gets MinimalEnv
	// and Env.
	Path string
	Args []string
	Env  []string
	// Config is the plugin's configuration.
	Config map[string]any
	Setup  engine.SetupRequest
	// Exec is the command; its WorkspaceID is set by the host.
	Exec engine.ExecRequest
	// Ready is a word of the command's output that says it runs:
	// StartEngineHost returns once the command printed it. Without it,
	// StartEngineHost returns once the workspace is set up, and the test
	// sees in the backend when the command runs.
	Ready string
}

// hostEvent is one line the host writes on its standard output.
type hostEvent struct {
	Workspace *engine.Workspace  `json:"workspace,omitempty"`
	PluginPid int                `json:"plugin_pid,omitempty"`
	Output    string             `json:"output,omitempty"`
	Done      bool               `json:"done,omitempty"` // the Exec returned
	Result    *engine.ExecResult `json:"result,omitempty"`
	Error     string             `json:"error,omitempty"`
	Failure   string             `json:"failure,omitempty"` // no workspace, and why
}

// EngineHost is a process that holds an engine plugin's client, as a
// server or a worker does: the test binary again, run by EngineHostMain.
// A test freezes it (SIGSTOP) to see what the engine does when its host
// stops answering: its calls are cancelled (engine.HostKeepalive) and it
// stops what they started.
type EngineHost struct {
	// Workspace is the workspace the host set up.
	Workspace engine.Workspace
	// PluginPid is the plugin process's ID.
	PluginPid int

	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	output strings.Builder
	ready  chan struct{}
	ended  chan struct{}
	result hostEvent
}

// EngineHostMain makes the test binary an engine host when
// StartEngineHost started it: it serves as one and exits. Call it first
// in TestMain.
func EngineHostMain() {
	spec := os.Getenv(engineHostEnv)
	if spec == "" {
		return
	}
	os.Exit(runEngineHost(spec))
}

// StartEngineHost starts an engine host that runs spec, and returns once
// the command printed spec.Ready (or, without it, once the workspace is
// set up). When the test ends the host is woken (if frozen), tears the
// workspace down and stops the plugin.
func StartEngineHost(t testing.TB, spec EngineHostSpec) *EngineHost {
	t.Helper()
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatalf("engine host: %v", err)
	}
	h := &EngineHost{t: t, ready: make(chan struct{}), ended: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0])
	h.cmd.Env = append(os.Environ(), engineHostEnv+"="+string(js))
	logs := &testWriter{t: t}
	h.cmd.Stderr = logs
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("engine host: %v", err)
	}
	t.Cleanup(func() { h.stop(); logs.stop() })
	started := make(chan hostEvent, 1)
	go h.read(stdout, started, spec.Ready)
	select {
	case ev := <-started:
		if ev.Failure != "" {
			t.Fatalf("engine host: %s", ev.Failure)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("engine host: no workspace after 3 minutes")
	}
	if spec.Ready == "" {
		return h
	}
	select {
	case <-h.ready:
	case <-h.ended:
		t.Fatalf("engine host: the command ended before it printed %q: %+v, output %q", spec.Ready, h.result, h.Output())
	case <-time.After(3 * time.Minute):
		t.Fatalf("engine host: the command did not print %q within 3 minutes; output %q", spec.Ready, h.Output())
	}
	return h
}

// read follows the host's events: the first (the workspace, or why there
// is none) goes to started, the output is kept, the result ends it.
func (h *EngineHost) read(stdout io.Reader, started chan<- hostEvent, ready string) {
	defer close(h.ended)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	first := true
	for sc.Scan() {
		var ev hostEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		if first {
			first = false
			if ev.Workspace != nil {
				h.Workspace, h.PluginPid = *ev.Workspace, ev.PluginPid
			}
			started <- ev
			continue
		}
		h.mu.Lock()
		h.output.WriteString(ev.Output)
		if ready != "" && strings.Contains(h.output.String(), ready) {
			ready = ""
			close(h.ready)
		}
		if ev.Done {
			h.result = ev
		}
		h.mu.Unlock()
	}
	if first {
		started <- hostEvent{Failure: "the host exited before it set up a workspace"}
	}
}

// Output is what the command printed so far.
func (h *EngineHost) Output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.output.String()
}

// Freeze stops the host (SIGSTOP) and returns when.
func (h *EngineHost) Freeze() time.Time {
	h.t.Helper()
	at := time.Now()
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		h.t.Fatalf("freeze the engine host: %v", err)
	}
	return at
}

// FrozenBound is how long after its host froze an engine may take to
// stop the host's commands: the default lease (10 s), renewed every
// 2.5 s, can expire 7.5 s after the host froze, and another worker then
// run the job.
const FrozenBound = 7 * time.Second

// WaitStopped polls running (what of the command still runs, as the
// backend shows it) until it lists nothing, and returns how long after
// frozen that was. The test fails when that is later than FrozenBound.
func (h *EngineHost) WaitStopped(frozen time.Time, running func() ([]string, error)) time.Duration {
	h.t.Helper()
	var left []string
	for {
		l, err := running()
		took := time.Since(frozen)
		if err != nil {
			h.t.Fatalf("what runs %s after the host froze: %v", took.Round(time.Millisecond), err)
		}
		if len(l) == 0 {
			if took > FrozenBound {
				h.t.Errorf("the frozen host's command was stopped %s after the host froze, later than %s: its lease could have expired and the job run twice", took.Round(time.Millisecond), FrozenBound)
			}
			return took
		}
		left = l
		if took > FrozenBound+10*time.Second {
			h.t.Fatalf("%s after the host froze, its command still runs: %v", took.Round(time.Millisecond), left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Thaw wakes a frozen host.
func (h *EngineHost) Thaw() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		h.t.Fatalf("wake the engine host: %v", err)
	}
}

// Result waits for the command's end as the host saw it: its result, or
// the error its Exec returned.
func (h *EngineHost) Result(timeout time.Duration) (*engine.ExecResult, string) {
	h.t.Helper()
	select {
	case <-h.ended:
	case <-time.After(timeout):
		h.t.Fatalf("engine host: the Exec did not return within %s", timeout)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.result.Result, h.result.Error
}

// stop wakes the host and has it tear the workspace down and stop the
// plugin; a host that does not, and its plugin, are killed.
func (h *EngineHost) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGCONT)
	h.stdin.Close()
	// Its events are read to their end before Wait closes the pipe.
	select {
	case <-h.ended:
	case <-time.After(time.Minute):
		_ = h.cmd.Process.Kill()
	}
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = h.cmd.Process.Kill()
		<-done
	}
	if h.PluginPid > 0 {
		_ = syscall.Kill(h.PluginPid, syscall.SIGKILL)
	}
}

// runEngineHost is the host process: it launches the plugin, runs the
// spec's command, and once its standard input closes tears the workspace
// down and stops the plugin.
func runEngineHost(specJSON string) int {
	var spec EngineHostSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "engine host: %v\n", err)
		return 2
	}
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	send := func(ev hostEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
	fail := func(format string, args ...any) int {
		send(hostEvent{Failure: fmt.Sprintf(format, args...)})
		return 1
	}

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(MinimalEnv(), spec.Env...)
	client := newClient(cmd, os.Stderr)
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		return fail("launch the plugin: %v", err)
	}
	raw, err := rpc.Dispense(sdk.CategoryEngine.String())
	if err != nil {
		return fail("dispense the engine: %v", err)
	}
	e, ok := raw.(engine.Engine)
	if !ok {
		return fail("the dispensed client is %T, not an engine", raw)
	}
	ctx := context.Background()
	resp, err := e.Configure(ctx, &sdk.ConfigureRequest{Config: spec.Config})
	if err != nil {
		return fail("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		return fail("Configure: %v", resp.Diagnostics)
	}
	ws, err := e.Setup(ctx, &spec.Setup)
	if err != nil {
		return fail("Setup: %v", err)
	}
	send(hostEvent{Workspace: ws, PluginPid: client.ReattachConfig().Pid})

	req := spec.Exec
	req.WorkspaceID = ws.ID
	go func() {
		res, err := e.Exec(ctx, &req, func(_ string, b []byte) error {
			send(hostEvent{Output: string(b)})
			return nil
		})
		ev := hostEvent{Done: true, Result: res}
		if err != nil {
			ev.Error = err.Error()
		}
		send(ev)
		os.Stdout.Close()
	}()

	_, _ = io.Copy(io.Discard, os.Stdin)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.Teardown(tctx, ws.ID); err != nil {
		fmt.Fprintf(os.Stderr, "engine host: Teardown: %v\n", err)
	}
	return 0
}
