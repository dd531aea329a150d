package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// newEngine returns a local engine whose workspaces live in the test's
// temporary directory.
func newEngine(t testing.TB) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": reachableDir(t), "kill_grace": "500ms"}})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	return p
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) engine.Engine { return newEngine(t) }, engine.Service, sdktest.EngineSuite)
}

func TestConformanceWithEmptyConfig(t *testing.T) {
	sdktest.EngineSuite(t, func(t *testing.T) engine.Engine {
		p := New()
		resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{}})
		if err != nil || sdk.HasErrors(resp.Diagnostics) {
			t.Fatalf("Configure({}): %v %v", err, resp)
		}
		return p
	})
}

func TestSetupCreatesWorkspacesUnderRootAndTeardownRemovesThem(t *testing.T) {
	root := reachableDir(t)
	p := New()
	if _, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": root}}); err != nil {
		t.Fatal(err)
	}
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Job: "build"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if !strings.HasPrefix(ws.Workdir, root+string(filepath.Separator)) {
		t.Fatalf("workdir %s is not under the configured root %s", ws.Workdir, root)
	}
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "mkdir ro && touch ro/f && chmod 0555 ro"}, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec: %v %+v", err, res)
	}
	if err := p.Teardown(context.Background(), ws.ID); err != nil {
		t.Fatalf("Teardown of a workspace with a read-only directory: %v", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("root still holds %d entries after Teardown", len(entries))
	}
}

func TestCommandEnvironmentIsMinimal(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	t.Setenv("PALVELLA_TEST_SECRET", "host-only")
	var out bytes.Buffer
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"env"}, Env: map[string]string{"GIVEN": "1"}},
		func(_ string, b []byte) error { out.Write(b); return nil })
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("env: %v %+v", err, res)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	delete(got, "PWD") // some env implementations add it
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GIVEN"} {
		if _, ok := got[k]; !ok {
			t.Errorf("command environment lacks %s: %v", k, got)
		}
		delete(got, k)
	}
	if len(got) != 0 {
		t.Errorf("command environment has variables nobody gave it: %v", got)
	}
}

func TestTmpdirIsInsideTheWorkspaceButNotTheWorkdir(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	var out bytes.Buffer
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: `f=$(mktemp) && echo "$f" && ls -A`},
		func(_ string, b []byte) error { out.Write(b); return nil })
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("mktemp: %v %+v %q", err, res, out.String())
	}
	tmp := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tmp, filepath.Dir(ws.Workdir)) || strings.HasPrefix(tmp, ws.Workdir) {
		t.Fatalf("temporary file %s: want it in the workspace, outside the workdir %s", tmp, ws.Workdir)
	}
}

func TestOutputIsStreamedWhileTheCommandRuns(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	// The command waits for a file that the test creates only after it has
	// seen the first line: it can only finish if that line was streamed.
	gate := filepath.Join(ws.Workdir, "gate")
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
		Script: "echo first; i=0; while [ ! -e gate ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done; echo second"},
		func(stream string, b []byte) error {
			if stream == engine.Stdout && bytes.Contains(b, []byte("first")) {
				return os.WriteFile(gate, nil, 0o644)
			}
			return nil
		})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d: the first line did not reach the output function before the command ended", res.ExitCode)
	}
}

func TestProcessesLeftBehindAreStopped(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 60 >/dev/null 2>&1 & echo $! > bg.pid"}, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec: %v %+v", err, res)
	}
	res, err = p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
		Script: `pid=$(cat bg.pid); if kill -0 "$pid" 2>/dev/null; then case "$(ps -o stat= -p "$pid")" in Z*) exit 0;; esac; exit 1; fi`}, nil)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("a background process outlived the command that started it")
	}
}

func TestProgramNotFoundIsExit127(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	var stderr bytes.Buffer
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"palvella-no-such-program"}},
		func(s string, b []byte) error {
			if s == engine.Stderr {
				stderr.Write(b)
			}
			return nil
		})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res.ExitCode != 127 || !strings.Contains(stderr.String(), "palvella-no-such-program") {
		t.Fatalf("exit %d, stderr %q; want 127 and a message naming the program", res.ExitCode, stderr.String())
	}
}

func TestCommandIsFoundThroughTheGivenPath(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
		FilesIn: []engine.File{{Path: "bin/hello", Content: []byte("#!/bin/sh\nexit 42\n"), Mode: 0o755}},
		Env:     map[string]string{"PATH": filepath.Join(ws.Workdir, "bin") + ":/usr/bin:/bin"},
		Command: []string{"hello"}}, nil)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res.ExitCode != 42 {
		t.Fatalf("exit %d, want 42 from the program found on the command's PATH", res.ExitCode)
	}
}

func TestCancelBeforeStartCancelsTheExec(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	if err := p.Cancel(context.Background(), ws.ID, "early"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "early", Script: "touch ran"}, nil)
	if err != nil || !res.Cancelled {
		t.Fatalf("Exec after its Cancel: %+v %v, want Cancelled", res, err)
	}
	if _, err := os.Stat(filepath.Join(ws.Workdir, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cancelled command ran")
	}
}

func TestFilesOutDoNotFollowLinksOutOfTheWorkspace(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("host file"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
		Env: map[string]string{"T": outside}, Script: `ln -s "$T" link`, FilesOut: []string{"link"}}, nil)
	if err == nil {
		t.Fatalf("files out followed a link out of the workspace: %+v", res.FilesOut)
	}
	if !errors.Is(err, sdk.ErrFailedPrecondition) || strings.Contains(err.Error(), "host file") {
		t.Fatalf("error = %v, want sdk.ErrFailedPrecondition without the content", err)
	}
}

func TestFilesInCannotBeWrittenThroughLinks(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(ws.Workdir, "out")); err != nil {
		t.Fatal(err)
	}
	_, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "true",
		FilesIn: []engine.File{{Path: "out/planted", Content: []byte("x")}}}, nil)
	if err == nil {
		t.Fatalf("a file in was written through a link out of the workspace")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file planted outside the workspace")
	}
}

func TestImageIsRejected(t *testing.T) {
	p := newEngine(t)
	ws := setup(t, p)
	_, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "true", Image: "alpine"}, nil)
	var typed *sdk.Error
	if !errors.As(err, &typed) || !errors.Is(err, sdk.ErrInvalidArgument) || typed.Field != "image" {
		t.Fatalf("Exec with an image: %v, want an invalid argument about image", err)
	}
	_, err = p.Setup(context.Background(), &engine.SetupRequest{Options: map[string]any{"image": "alpine"}})
	if !errors.As(err, &typed) || typed.Field != "options.image" {
		t.Fatalf("Setup with an image: %v, want an invalid argument about options.image", err)
	}
}

func TestConfigureReportsEveryBadSettingAndKeepsTheOldConfig(t *testing.T) {
	p := New()
	root := reachableDir(t)
	if _, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": root}}); err != nil {
		t.Fatal(err)
	}
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{
		"root": 7, "shell": []any{"sh", ""}, "kill_grace": "-1s", "colour": "blue",
	}})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, d := range resp.Diagnostics {
		if d.Severity == sdk.SeverityError {
			fields[d.Field] = true
		}
	}
	for _, f := range []string{"config.root", "config.shell[1]", "config.kill_grace", "config.colour"} {
		if !fields[f] {
			t.Errorf("no error diagnostic for %s; got %v", f, resp.Diagnostics)
		}
	}
	ws := setup(t, p)
	if !strings.HasPrefix(ws.Workdir, root) {
		t.Fatalf("a rejected configuration changed the root: workdir %s", ws.Workdir)
	}
}

func TestConfiguredShellRunsScripts(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": t.TempDir(), "shell": []any{"sh", "-c"}}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	ws := setup(t, p)
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "false; exit 5"}, nil)
	if err != nil || res.ExitCode != 5 {
		t.Fatalf("with shell [sh -c] the script should go on after false: %v %+v", err, res)
	}
}

func TestTeardownStopsRunningCommands(t *testing.T) {
	p := newEngine(t)
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	done := make(chan *engine.ExecResult, 1)
	go func() {
		res, _ := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo go; sleep 60"}, func(string, []byte) error {
			once.Do(func() { close(started) })
			return nil
		})
		done <- res
	}()
	<-started
	if err := p.Teardown(context.Background(), ws.ID); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	res := <-done
	if res == nil || !res.Cancelled {
		t.Fatalf("Exec running during Teardown ended with %+v, want Cancelled", res)
	}
	if _, err := os.Stat(ws.Workdir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("workdir still exists after Teardown")
	}
}

// reachableDir is a temporary directory that the user commands run as can
// enter (t.TempDir's parent is private to the test's user).
func reachableDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "palvella-local-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeAll(dir) })
	return dir
}

func setup(t testing.TB, p *Plugin) *engine.Workspace {
	t.Helper()
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Job: t.Name()})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = p.Teardown(context.Background(), ws.ID) })
	return ws
}

func BenchmarkExecTrue(b *testing.B) {
	p := newEngine(b)
	ws := setup(b, p)
	req := &engine.ExecRequest{WorkspaceID: ws.ID, Script: "true"}
	for b.Loop() {
		res, err := p.Exec(context.Background(), req, nil)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Exec: %v %+v", err, res)
		}
	}
}

func BenchmarkShTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
