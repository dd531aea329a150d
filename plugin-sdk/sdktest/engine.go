package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// EngineSuite is the conformance suite of engine plugins. Each subtest gets
// a fresh plugin from newPlugin, configured. Commands are portable /bin/sh
// scripts; everything the suite checks inside a workspace it checks with
// another command, so the suite also holds for engines whose workspaces
// live elsewhere (a container, a pod).
func EngineSuite(t *testing.T, newPlugin Factory[engine.Engine]) {
	ctx := context.Background()

	t.Run("describe", func(t *testing.T) {
		m := checkManifest(t, newPlugin(t), sdk.CategoryEngine)
		if len(m.TypesOf(sdk.CategoryEngine)) == 0 {
			t.Errorf("manifest lists no engine type")
		}
	})

	t.Run("setup returns an existing workdir that commands run in", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		if ws.ID == "" || ws.Workdir == "" {
			t.Fatalf("Setup returned %+v, want an ID and a workdir", ws)
		}
		other := setupWorkspace(t, p)
		if other.ID == ws.ID || other.Workdir == ws.Workdir {
			t.Fatalf("two Setups returned the same workspace: %+v and %+v", ws, other)
		}
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{"WS": ws.Workdir},
			Script: `test -d "$WS" && test "$(pwd -P)" = "$(cd "$WS" && pwd -P)" && echo ok`})
		if r.exitCode != 0 || r.stdout != "ok\n" {
			t.Fatalf("command in the workspace: exit %d, stdout %q, stderr %q; want the workdir %s to exist and be the current directory",
				r.exitCode, r.stdout, r.stderr, ws.Workdir)
		}
	})

	t.Run("stdout and stderr arrive separately and in order", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID,
			Script: "echo out1; echo err1 >&2; echo out2; echo err2 >&2; i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done"})
		var want strings.Builder
		want.WriteString("out1\nout2\n")
		for i := range 200 {
			fmt.Fprintf(&want, "line%d\n", i)
		}
		if r.stdout != want.String() {
			t.Errorf("stdout = %q, want %q", r.stdout, want.String())
		}
		if r.stderr != "err1\nerr2\n" {
			t.Errorf("stderr = %q, want %q", r.stderr, "err1\nerr2\n")
		}
		if r.badStream != "" {
			t.Errorf("output arrived on a stream named %q, want only %q and %q", r.badStream, engine.Stdout, engine.Stderr)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		for _, tc := range []struct {
			name string
			req  engine.ExecRequest
			want int
		}{
			{"script true", engine.ExecRequest{Script: "true"}, 0},
			{"script exit 3", engine.ExecRequest{Script: "exit 3"}, 3},
			{"command exit 0", engine.ExecRequest{Command: []string{"sh", "-c", "exit 0"}}, 0},
			{"command exit 3", engine.ExecRequest{Command: []string{"sh", "-c", "exit 3"}}, 3},
		} {
			tc.req.WorkspaceID = ws.ID
			r := execOK(t, p, &tc.req)
			if r.exitCode != tc.want || r.res.TimedOut || r.res.Cancelled {
				t.Errorf("%s: result %+v, want exit code %d, not timed out, not cancelled", tc.name, r.res, tc.want)
			}
		}
	})

	t.Run("a command is an argv, not split by a shell", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"printf", "%s|", "a b", "$HOME", "c;d"}})
		if r.exitCode != 0 || r.stdout != "a b|$HOME|c;d|" {
			t.Fatalf("printf argv: exit %d, stdout %q, want %q", r.exitCode, r.stdout, "a b|$HOME|c;d|")
		}
	})

	t.Run("a script runs under the given shell", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Shell: []string{"sh", "-c"}, Script: "false; echo went-on"})
		if r.exitCode != 0 || r.stdout != "went-on\n" {
			t.Fatalf("sh -c without -e: exit %d, stdout %q, want the script to go on after false", r.exitCode, r.stdout)
		}
	})

	t.Run("env reaches the command and the host's does not", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		t.Setenv("PALVELLA_SUITE_HOST_ONLY", "leaked")
		value := "two words; $NOT_EXPANDED 'quoted'"
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{"GREETING": value, "EMPTY": ""},
			Script: `printf '%s\n' "$GREETING"; printf '%s\n' "${EMPTY-unset}"; printf '%s\n' "${PALVELLA_SUITE_HOST_ONLY-unset}"`})
		want := value + "\n\nunset\n"
		if r.exitCode != 0 || r.stdout != want {
			t.Fatalf("environment seen by the command: exit %d, stdout %q, want %q", r.exitCode, r.stdout, want)
		}
		r = execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"env"}})
		if strings.Contains(r.stdout, "PALVELLA_SUITE_HOST_ONLY") {
			t.Fatalf("the host's environment leaked into the command:\n%s", r.stdout)
		}
	})

	t.Run("files in and out", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{
			WorkspaceID: ws.ID,
			FilesIn: []engine.File{
				{Path: "in/data.txt", Content: []byte("hello files\n")},
				{Path: "tools/run.sh", Content: []byte("#!/bin/sh\necho from-script\n"), Mode: 0o755},
				{Path: "empty", Content: nil},
			},
			Script:   "./tools/run.sh; test -f empty; mkdir -p out; tr a-z A-Z < in/data.txt > out/upper.txt; printf '\\000\\001\\377' > out/bin",
			FilesOut: []string{"out/upper.txt", "out/bin", "missing.txt", "in/data.txt"},
		})
		if r.exitCode != 0 || r.stdout != "from-script\n" {
			t.Fatalf("script with files in: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
		}
		got := map[string][]byte{}
		for _, f := range r.res.FilesOut {
			got[f.Path] = f.Content
		}
		for path, want := range map[string][]byte{"out/upper.txt": []byte("HELLO FILES\n"), "out/bin": {0, 1, 255}, "in/data.txt": []byte("hello files\n")} {
			if c, ok := got[path]; !ok || !bytes.Equal(c, want) {
				t.Errorf("file out %s = %q (present %v), want %q", path, c, ok, want)
			}
		}
		if _, ok := got["missing.txt"]; ok || len(got) != 3 {
			t.Errorf("files out = %v, want exactly the three that exist", keys(got))
		}
	})

	t.Run("workdir", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Workdir: "sub/dir",
			FilesIn:  []engine.File{{Path: "sub/dir/marker", Content: []byte("here\n")}},
			Script:   "cat marker; echo made > made.txt",
			FilesOut: []string{"sub/dir/made.txt"}})
		if r.exitCode != 0 || r.stdout != "here\n" {
			t.Fatalf("command in workdir sub/dir: exit %d, stdout %q, stderr %q, want it to read sub/dir/marker", r.exitCode, r.stdout, r.stderr)
		}
		if len(r.res.FilesOut) != 1 || string(r.res.FilesOut[0].Content) != "made\n" {
			t.Fatalf("file written in workdir not found at sub/dir/made.txt: %+v", r.res.FilesOut)
		}
	})

	t.Run("timeout stops a long command", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		// The guard only keeps a broken engine from hanging the suite.
		gctx, cancel := context.WithTimeout(ctx, 25*time.Second)
		defer cancel()
		res, err := p.Exec(gctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo started; sleep 30; echo finished", Timeout: 500 * time.Millisecond}, discard)
		if err != nil {
			t.Fatalf("Exec with a timeout: %v (want a result with TimedOut)", err)
		}
		if !res.TimedOut || res.Cancelled || res.ExitCode == 0 {
			t.Fatalf("result %+v, want TimedOut, not Cancelled, a non-zero exit code", res)
		}
	})

	t.Run("cancel kills the whole process tree", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		ready := make(chan struct{})
		done := make(chan execOutcome, 1)
		go func() {
			res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "long", Script: treeScript}, signalOn("ready", ready))
			done <- execOutcome{res, err}
		}()
		waitReady(t, ready, done)
		if err := p.Cancel(ctx, ws.ID, "long"); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		out := <-done
		if out.err != nil {
			t.Fatalf("cancelled Exec: %v (want a result with Cancelled)", out.err)
		}
		if !out.res.Cancelled || out.res.TimedOut || out.res.ExitCode == 0 {
			t.Fatalf("cancelled Exec result %+v, want Cancelled, not TimedOut, a non-zero exit code", out.res)
		}
		assertChildGone(t, p, ws)
		if err := p.Cancel(ctx, ws.ID, "long"); err != nil {
			t.Fatalf("Cancel of an Exec that has ended: %v, want no error", err)
		}
	})

	t.Run("cancelling the context kills the command", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ready := make(chan struct{})
		done := make(chan execOutcome, 1)
		go func() {
			res, err := p.Exec(cctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "ctx", Script: treeScript}, signalOn("ready", ready))
			done <- execOutcome{res, err}
		}()
		waitReady(t, ready, done)
		cancel()
		out := <-done
		if !errors.Is(out.err, context.Canceled) {
			t.Fatalf("Exec whose context was cancelled: result %+v, error %v, want context.Canceled", out.res, out.err)
		}
		assertChildGone(t, p, ws)
	})

	t.Run("an already cancelled context runs nothing", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := p.Exec(cctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "touch ran"}, discard)
		assertCancelled(t, err)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "test ! -e ran"})
		if r.exitCode != 0 {
			t.Fatalf("an Exec with a cancelled context ran its command")
		}
	})

	t.Run("teardown removes the workspace", func(t *testing.T) {
		p := newPlugin(t)
		ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "gone"})
		if err != nil {
			t.Fatalf("Setup: %v", err)
		}
		execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo x > file"})
		if err := p.Teardown(ctx, ws.ID); err != nil {
			t.Fatalf("Teardown: %v", err)
		}
		if _, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "true"}, discard); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Exec after Teardown: error = %v, want sdk.ErrNotFound", err)
		}
		if err := p.Teardown(ctx, ws.ID); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("second Teardown: error = %v, want sdk.ErrNotFound", err)
		}
		next := setupWorkspace(t, p)
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: next.ID, Env: map[string]string{"OLD": ws.Workdir}, Script: `test ! -e "$OLD"`})
		if r.exitCode != 0 {
			t.Fatalf("workdir %s of a torn down workspace still exists", ws.Workdir)
		}
	})

	t.Run("bad input names the field", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		for _, tc := range []struct {
			name  string
			req   engine.ExecRequest
			field string
		}{
			{"no script and no command", engine.ExecRequest{}, "script"},
			{"script and command", engine.ExecRequest{Script: "true", Command: []string{"true"}}, "command"},
			{"empty env name", engine.ExecRequest{Script: "true", Env: map[string]string{"": "x"}}, "env"},
			{"env name with =", engine.ExecRequest{Script: "true", Env: map[string]string{"A=B": "x"}}, "env"},
			{"workdir outside", engine.ExecRequest{Script: "true", Workdir: "../.."}, "workdir"},
			{"absolute workdir", engine.ExecRequest{Script: "true", Workdir: "/etc"}, "workdir"},
			{"file in outside", engine.ExecRequest{Script: "true", FilesIn: []engine.File{{Path: "ok"}, {Path: "../escape"}}}, "files_in[1].path"},
			{"absolute file in", engine.ExecRequest{Script: "true", FilesIn: []engine.File{{Path: "/tmp/x"}}}, "files_in[0].path"},
			{"file out outside", engine.ExecRequest{Script: "true", FilesOut: []string{"a/../../b"}}, "files_out[0]"},
			{"negative timeout", engine.ExecRequest{Script: "true", Timeout: -time.Second}, "timeout"},
		} {
			tc.req.WorkspaceID = ws.ID
			_, err := p.Exec(ctx, &tc.req, discard)
			assertInvalid(t, tc.name, err, tc.field)
		}
		r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "test ! -e ok"})
		if r.exitCode != 0 {
			t.Errorf("a rejected Exec wrote its files in")
		}

		_, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: "no-such-workspace", Script: "true"}, discard)
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Exec in an unknown workspace: error = %v, want sdk.ErrNotFound", err)
		}
		if err := p.Cancel(ctx, "no-such-workspace", "x"); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Cancel in an unknown workspace: error = %v, want sdk.ErrNotFound", err)
		}
		if err := p.Teardown(ctx, "no-such-workspace"); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Teardown of an unknown workspace: error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("an output function's error stops the command", func(t *testing.T) {
		p := newPlugin(t)
		ws := setupWorkspace(t, p)
		stop := errors.New("log storage is full")
		gctx, cancel := context.WithTimeout(ctx, 25*time.Second)
		defer cancel()
		_, err := p.Exec(gctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo first; sleep 30; echo late"}, func(string, []byte) error { return stop })
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Exec whose output function failed: error = %v, want the function's error before the command ends", err)
		}
		if !errors.Is(err, stop) {
			t.Fatalf("Exec whose output function failed: error = %v, want it to wrap the function's error", err)
		}
	})
}

// treeScript starts a child in the background, records its pid, says it is
// ready and waits.
const treeScript = `sleep 60 &
echo $! > child.pid
echo ready
wait
echo not-killed`

// assertChildGone checks, from a new command in the same workspace, that
// the background child started by treeScript no longer runs. A zombie that
// nobody has reaped yet counts as gone; the check retries for a while
// because a killed process may take a moment to disappear.
func assertChildGone(t *testing.T, p engine.Engine, ws *engine.Workspace) {
	t.Helper()
	r := execOK(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: `pid=$(cat child.pid)
i=0
while kill -0 "$pid" 2>/dev/null; do
  case "$(ps -o stat= -p "$pid" 2>/dev/null)" in Z*) exit 0;; esac
  i=$((i+1))
  if [ "$i" -ge 20 ]; then echo "process $pid still runs"; exit 1; fi
  sleep 1
done`})
	if r.exitCode != 0 {
		t.Fatalf("the background child of the stopped command survived: %s%s", r.stdout, r.stderr)
	}
}

type execOutcome struct {
	res *engine.ExecResult
	err error
}

// waitReady waits until the command printed its ready line, failing if the
// Exec ended first.
func waitReady(t *testing.T, ready <-chan struct{}, done <-chan execOutcome) {
	t.Helper()
	select {
	case <-ready:
	case out := <-done:
		t.Fatalf("Exec ended before the command was ready: result %+v, error %v", out.res, out.err)
	}
}

// signalOn returns an output function that closes ch once stdout has
// contained word.
func signalOn(word string, ch chan struct{}) func(string, []byte) error {
	var (
		mu   sync.Mutex
		seen bytes.Buffer
		once sync.Once
	)
	return func(stream string, data []byte) error {
		if stream != engine.Stdout {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		seen.Write(data)
		if bytes.Contains(seen.Bytes(), []byte(word)) {
			once.Do(func() { close(ch) })
		}
		return nil
	}
}

func discard(string, []byte) error { return nil }

// setupWorkspace sets up a workspace that is torn down when the test ends.
func setupWorkspace(t *testing.T, p engine.Engine) *engine.Workspace {
	t.Helper()
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Namespace: "default", Pipeline: "suite", Run: "1", Job: t.Name()})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Teardown(context.Background(), ws.ID); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Teardown: %v", err)
		}
	})
	return ws
}

type execRun struct {
	res            *engine.ExecResult
	exitCode       int
	stdout, stderr string
	badStream      string
}

// execOK runs req, which must produce a result.
func execOK(t *testing.T, p engine.Engine, req *engine.ExecRequest) execRun {
	t.Helper()
	var out, errOut bytes.Buffer
	var bad string
	res, err := p.Exec(context.Background(), req, func(stream string, data []byte) error {
		switch stream {
		case engine.Stdout:
			out.Write(data)
		case engine.Stderr:
			errOut.Write(data)
		default:
			bad = stream
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Exec %q%q: %v", req.Script, req.Command, err)
	}
	return execRun{res: res, exitCode: res.ExitCode, stdout: out.String(), stderr: errOut.String(), badStream: bad}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
