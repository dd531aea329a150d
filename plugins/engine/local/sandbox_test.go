//go:build linux

package local

import (
	"bytes"
	"context"
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

	"github.com/palvella/palvella/plugin-sdk/engine"
)

// secretsFixture is a fake PALVELLA_HOME holding a file only its owner
// can read, and a process playing the server with a secret in its
// environment, both of the user uid (-1: the test's).
type secretsFixture struct {
	home, file, value string
	server            int
}

func newSecrets(t *testing.T, uid int) secretsFixture {
	t.Helper()
	value := fmt.Sprintf("palvella-test-secret-%d", time.Now().UnixNano())
	home := reachableDir(t) // 0711: only the file's own mode and the sandbox protect it
	file := filepath.Join(home, "secret.key")
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("sleep", "60")
	srv.Env = []string{"PALVELLA_SECRET_KEY=" + value}
	if uid >= 0 {
		if err := os.Chown(file, uid, uid); err != nil {
			t.Fatal(err)
		}
		srv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	return secretsFixture{home: home, file: file, value: value, server: srv.Process.Pid}
}

// probeScript tries every way the fixture's secrets could be read and
// prints what it got, with a word saying which way worked.
const probeScript = `cat "$SECRET_FILE" 2>/dev/null && echo HOME-FILE-READ
ls "$FAKE_HOME" 2>/dev/null | grep -q secret && echo HOME-LISTED
v=$(tr '\0' '\n' < "/proc/$SERVER_PID/environ" 2>/dev/null) && [ -n "$v" ] && echo "$v" && echo SERVER-ENVIRON-READ
cat "/proc/$PPID/environ" >/dev/null 2>&1 && echo ENGINE-ENVIRON-READ
ls "/proc/$SERVER_PID/cwd/" >/dev/null 2>&1 && echo SERVER-CWD-READ
cat "/proc/$SERVER_PID/root$SECRET_FILE" 2>/dev/null && echo PROC-ROOT-READ
echo probed`

func (s secretsFixture) probe(t *testing.T, p *Plugin) string {
	t.Helper()
	ws := setup(t, p)
	var out bytes.Buffer
	var mu sync.Mutex
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: probeScript, Shell: []string{"sh", "-c"},
		Env: map[string]string{"SECRET_FILE": s.file, "FAKE_HOME": s.home, "SERVER_PID": strconv.Itoa(s.server)}},
		func(_ string, b []byte) error { mu.Lock(); out.Write(b); mu.Unlock(); return nil })
	if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "probed") {
		t.Fatalf("probe: %v %+v %q", err, res, out.String())
	}
	return out.String()
}

func assertNothingRead(t *testing.T, s secretsFixture, out string, ways ...string) {
	t.Helper()
	if strings.Contains(out, s.value) {
		t.Errorf("a command read the secret: %q", out)
	}
	for _, w := range ways {
		if strings.Contains(out, w) {
			t.Errorf("a command could do %s: %q", w, out)
		}
	}
}

var allWays = []string{"HOME-FILE-READ", "HOME-LISTED", "SERVER-ENVIRON-READ", "ENGINE-ENVIRON-READ", "SERVER-CWD-READ", "PROC-ROOT-READ"}

// TestCommandsCannotReachTheServersSecrets checks each setup the local
// engine can be in on this host: what protects the server's home and
// processes, and that it does. As root, "the same user" setups play a
// server that is not root by running the fake server and the commands
// as uid 65534.
func TestCommandsCannotReachTheServersSecrets(t *testing.T) {
	root := os.Geteuid() == 0
	landlock := landlockABI() >= 1
	t.Logf("engine uid %d, Landlock ABI %d", os.Geteuid(), landlockABI())
	sameUser := func() (int, map[string]any) {
		if root {
			return defaultJobID, map[string]any{"user": strconv.Itoa(defaultJobID)}
		}
		return -1, map[string]any{}
	}

	t.Run("default", func(t *testing.T) {
		s := newSecrets(t, -1)
		p := engineWith(t, map[string]any{"home": s.home})
		cfg := p.config()
		if root && cfg.jobUID != defaultJobID {
			t.Fatalf("an engine running as root runs commands as uid %d, want %d", cfg.jobUID, defaultJobID)
		}
		if cfg.landlock != landlock {
			t.Fatalf("sandbox auto chose landlock=%v on a kernel with ABI %d", cfg.landlock, landlockABI())
		}
		out := s.probe(t, p)
		if !root && !landlock {
			// Nothing stands between a command and its user's files:
			// what docs/security.md says of this setup.
			if !strings.Contains(out, "HOME-FILE-READ") {
				t.Fatalf("without root and Landlock a command runs as the engine's user and reads what it reads; got %q", out)
			}
			return
		}
		assertNothingRead(t, s, out, allWays...)
	})

	t.Run("same user with Landlock", func(t *testing.T) {
		uid, extra := sameUser()
		s := newSecrets(t, uid)
		extra["home"] = s.home
		if !landlock {
			p := New()
			resp, _ := p.Configure(context.Background(), configRequest(t, map[string]any{"sandbox": "landlock"}))
			if resp == nil || !hasErrorOn(resp.Diagnostics, "config.sandbox") {
				t.Fatalf("sandbox landlock on a kernel without it: %+v, want an error on config.sandbox", resp)
			}
			return
		}
		extra["sandbox"] = "landlock"
		assertNothingRead(t, s, s.probe(t, engineWith(t, extra)), allWays...)
	})

	t.Run("same user without a sandbox", func(t *testing.T) {
		uid, extra := sameUser()
		s := newSecrets(t, uid)
		extra["home"], extra["sandbox"] = s.home, "none"
		out := s.probe(t, engineWith(t, extra))
		// What docs/security.md says: nothing protects the home then.
		if !strings.Contains(out, "HOME-FILE-READ") || !strings.Contains(out, "SERVER-ENVIRON-READ") {
			t.Fatalf("a command of the server's own user without a sandbox: got %q, want it to read the home and the server's environment", out)
		}
	})

	t.Run("another user without a sandbox", func(t *testing.T) {
		if !root {
			p := New()
			resp, _ := p.Configure(context.Background(), configRequest(t, map[string]any{"user": "65534"}))
			if resp == nil || !hasErrorOn(resp.Diagnostics, "config.user") {
				t.Fatalf("user 65534 for an engine that is not root: %+v, want an error on config.user", resp)
			}
			return
		}
		s := newSecrets(t, -1)
		out := s.probe(t, engineWith(t, map[string]any{"home": s.home, "sandbox": "none"}))
		// The home's directory is searchable here (0711) and listable by
		// its mode; the file and the processes are what the uid protects.
		assertNothingRead(t, s, out, "HOME-FILE-READ", "SERVER-ENVIRON-READ", "ENGINE-ENVIRON-READ", "SERVER-CWD-READ", "PROC-ROOT-READ")
	})

	t.Run("root with Landlock", func(t *testing.T) {
		if !root || !landlock {
			t.Skip("only for an engine running as root on a kernel with Landlock")
		}
		s := newSecrets(t, -1)
		out := s.probe(t, engineWith(t, map[string]any{"home": s.home, "user": "root"}))
		// Landlock keeps the home out of reach; root's processes are not
		// (docs/security.md: user root is not a setup to run jobs in).
		for _, w := range []string{"HOME-FILE-READ", "HOME-LISTED"} {
			if strings.Contains(out, w) {
				t.Errorf("a root command under Landlock could do %s: %q", w, out)
			}
		}
	})

	t.Run("the command's own workspace stays usable", func(t *testing.T) {
		s := newSecrets(t, -1)
		p := engineWith(t, map[string]any{"home": s.home})
		ws := setup(t, p)
		var out bytes.Buffer
		res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
			FilesIn: []engine.File{{Path: "in/data.txt", Content: []byte("given\n")}},
			Script:  `cat in/data.txt; echo more >> in/data.txt; mkdir -p out/deep && echo made > out/deep/f; f=$(mktemp); echo t > "$f"; cd "$HOME" && touch home-file; ls /proc/self/fd >/dev/null; echo ok`},
			func(_ string, b []byte) error { out.Write(b); return nil })
		if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "given") || !strings.Contains(out.String(), "ok") {
			t.Fatalf("a command in its workspace: %v %+v %q", err, res, out.String())
		}
	})
}

// TestSandboxFollowsChangesBesideTheDeniedPaths checks that what the
// sandbox grants outside the denied paths, kept between commands, follows
// what changes in the directories on the way to them: a directory made
// after the first command is reachable by the next, and a link to the home
// made meanwhile, or put in place of a directory granted before, is not a
// way in.
func TestSandboxFollowsChangesBesideTheDeniedPaths(t *testing.T) {
	if landlockABI() < 1 {
		t.Skip("this kernel has no Landlock")
	}
	uid, extra := -1, map[string]any{"sandbox": "landlock"}
	if os.Geteuid() == 0 {
		uid, extra["user"] = defaultJobID, strconv.Itoa(defaultJobID)
	}
	s := newSecrets(t, uid) // the home's file is the command's user's own: only the sandbox keeps it out
	extra["home"] = s.home
	p := engineWith(t, extra)
	beside := filepath.Dir(s.home)
	replaced := reachableDir(t)
	run := func(script string) string {
		t.Helper()
		ws := setup(t, p)
		var out bytes.Buffer
		var mu sync.Mutex
		res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: script, Shell: []string{"sh", "-c"}},
			func(_ string, b []byte) error { mu.Lock(); out.Write(b); mu.Unlock(); return nil })
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec: %v %+v %q", err, res, out.String())
		}
		return out.String()
	}
	if out := run("cd " + replaced + " && echo listed"); !strings.Contains(out, "listed") {
		t.Fatalf("a directory beside the home: %q, want it reachable", out)
	}

	made := reachableDir(t)
	if err := os.WriteFile(filepath.Join(made, "f"), []byte("NEW-DIR-READ"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(beside, fmt.Sprintf("palvella-test-link-%d", time.Now().UnixNano()))
	if err := os.Symlink(s.home, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(link) })
	if err := os.Remove(replaced); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.home, replaced); err != nil {
		t.Fatal(err)
	}
	out := run(fmt.Sprintf("cat %s/f; cat %s/secret.key; cat %s/secret.key; echo done", made, link, replaced))
	if !strings.Contains(out, "NEW-DIR-READ") {
		t.Errorf("a directory made after the first command: %q, want it reachable", out)
	}
	if strings.Contains(out, s.value) {
		t.Errorf("a link to the home made between commands let a command read the secret: %q", out)
	}
}

// TestSandboxKeepsOtherWorkspacesOut checks the layer of each command: a
// command reaches its own workspace and not another's, though both are
// under the same root and the shared layer grants the root.
func TestSandboxKeepsOtherWorkspacesOut(t *testing.T) {
	if landlockABI() < 1 {
		t.Skip("this kernel has no Landlock")
	}
	extra := map[string]any{"sandbox": "landlock"}
	if os.Geteuid() == 0 {
		extra["user"] = strconv.Itoa(defaultJobID) // as the default as root: both jobs share the uid
	}
	p := engineWith(t, extra)
	run := func(ws *engine.Workspace, script string) string {
		t.Helper()
		var out bytes.Buffer
		var mu sync.Mutex
		res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: script, Shell: []string{"sh", "-c"}},
			func(_ string, b []byte) error { mu.Lock(); out.Write(b); mu.Unlock(); return nil })
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec: %v %+v %q", err, res, out.String())
		}
		return out.String()
	}
	a, b := setup(t, p), setup(t, p)
	if out := run(a, "echo OTHER-WORKSPACE-READ > mine && chmod 644 mine && cat mine"); !strings.Contains(out, "OTHER-WORKSPACE-READ") {
		t.Fatalf("a command in its own workspace: %q", out)
	}
	for range 2 { // the second time with the shared layer kept
		out := run(b, fmt.Sprintf("cat %s/mine 2>&1; ls %s 2>&1; ls %s 2>&1; echo done", a.Workdir, a.Workdir, filepath.Dir(filepath.Dir(a.Workdir))))
		if strings.Contains(out, "OTHER-WORKSPACE-READ") || strings.Contains(out, "\nmine\n") || strings.HasPrefix(out, "mine\n") {
			t.Fatalf("a command read another job's workspace: %q", out)
		}
		if !strings.Contains(out, "done") {
			t.Fatalf("the probe did not run to its end: %q", out)
		}
	}
}

// TestSandboxKeptLayerFollowsAMoveIntoTheHome checks the layer kept
// between commands: a directory beside the home that a first command could
// reach, moved into the home afterwards, is out of reach of the next
// command (the kept layer is built again when an entry goes away).
func TestSandboxKeptLayerFollowsAMoveIntoTheHome(t *testing.T) {
	if landlockABI() < 1 {
		t.Skip("this kernel has no Landlock")
	}
	uid, extra := -1, map[string]any{"sandbox": "landlock"}
	if os.Geteuid() == 0 {
		uid, extra["user"] = defaultJobID, strconv.Itoa(defaultJobID)
	}
	s := newSecrets(t, uid)
	extra["home"] = s.home
	p := engineWith(t, extra)
	beside := reachableDir(t) // in the directory that holds the home
	if err := os.WriteFile(filepath.Join(beside, "f"), []byte("MOVED-DIR-READ"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(script string) string {
		t.Helper()
		ws := setup(t, p)
		var out bytes.Buffer
		var mu sync.Mutex
		res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: script, Shell: []string{"sh", "-c"}},
			func(_ string, b []byte) error { mu.Lock(); out.Write(b); mu.Unlock(); return nil })
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec: %v %+v %q", err, res, out.String())
		}
		return out.String()
	}
	if out := run("cat " + beside + "/f"); !strings.Contains(out, "MOVED-DIR-READ") {
		t.Fatalf("a directory beside the home: %q, want it reachable", out)
	}
	moved := filepath.Join(s.home, "moved")
	if err := os.Rename(beside, moved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(moved) })
	if out := run("cat " + moved + "/f 2>&1; echo done"); strings.Contains(out, "MOVED-DIR-READ") || !strings.Contains(out, "done") {
		t.Fatalf("a directory moved into the home after a command: %q, want it out of reach", out)
	}
}
