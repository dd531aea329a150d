//go:build linux

package local

import (
	"bytes"
	"context"
	"encoding/json"
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

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// TestMain lets this test binary serve the plugin, so that a test can run
// the engine as a separate process without a palvella binary.
func TestMain(m *testing.M) {
	if os.Getenv("PALVELLA_ENGINE_LOCAL_TEST_SERVE") == "1" {
		os.Exit(Serve())
	}
	os.Exit(m.Run())
}

// escapeScript starts three processes that leave the command's process
// group and session (setsid in the background, setsid -f, and a
// double-forked setsid daemon) plus one that stays in it, each with the
// marker in its argv and writing its pid to $PIDS, waits until all four
// run and prints "ready". Then it runs `tail`.
func escapeScript(tail string) string {
	return `d='echo $$ >> "$PIDS"; while :; do sleep 1; done'
setsid sh -c "$d" "$MARK-setsid" </dev/null >/dev/null 2>&1 &
setsid -f sh -c "$d" "$MARK-setsid-f" </dev/null >/dev/null 2>&1
( setsid sh -c "$d" "$MARK-daemon" </dev/null >/dev/null 2>&1 & )
sh -c "$d" "$MARK-group" </dev/null >/dev/null 2>&1 &
i=0
while [ "$(cat "$PIDS" 2>/dev/null | wc -l)" -lt 4 ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done
echo ready
` + tail
}

// markerFixture is a unique marker and a pid file outside the workspace
// that the commands' user can write.
type markerFixture struct {
	mark, pids string
}

func newMarker(t *testing.T) markerFixture {
	t.Helper()
	dir := reachableDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f := markerFixture{mark: fmt.Sprintf("palvella-test-marker-%d-%d", os.Getpid(), time.Now().UnixNano()), pids: filepath.Join(dir, "pids")}
	t.Cleanup(func() { f.killAll() }) // never leave anything behind, whatever failed
	return f
}

func (f markerFixture) env() map[string]string {
	return map[string]string{"MARK": f.mark, "PIDS": f.pids}
}

// live lists the processes (zombies aside) whose argv holds the marker.
func (f markerFixture) live() []int {
	var out []int
	for _, p := range allProcs() {
		if p.state == 'Z' || p.state == 'X' {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(f.mark)) {
			out = append(out, p.pid)
		}
	}
	return out
}

// recorded is how many processes wrote their pid.
func (f markerFixture) recorded() int {
	b, _ := os.ReadFile(f.pids)
	return len(strings.Fields(string(b)))
}

func (f markerFixture) killAll() {
	for _, pid := range f.live() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGone fails unless every marked process is gone within d.
func (f markerFixture) waitGone(t *testing.T, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		live := f.live()
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range live {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				desc = append(desc, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
			t.Fatalf("%s: %d processes still run %s after it: %s", what, len(live), d, strings.Join(desc, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRecorded waits until n processes wrote their pid.
func (f markerFixture) waitRecorded(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.recorded() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d processes started", f.recorded(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// containments are the ways to contain commands this host offers, by
// config value. cgroup is there when the host has a writable cgroup2;
// when it has none, the test checks that asking for it is refused and
// auto falls back to process groups.
func containments(t *testing.T) []string {
	t.Helper()
	if _, err := host.cgroups(); err == nil {
		return []string{"cgroup", "process_group"}
	} else {
		t.Logf("no cgroup containment on this host (%v): checking the fallback", err)
		p := New()
		resp, cerr := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": reachableDir(t), "containment": "cgroup"}})
		if cerr != nil || !sdk.HasErrors(resp.Diagnostics) {
			t.Fatalf("containment cgroup without cgroups: %v %v, want an error diagnostic", cerr, resp)
		}
		if auto := newEngine(t); auto.config().cgroup {
			t.Fatalf("containment auto chose cgroups that do not work")
		}
		return []string{"process_group"}
	}
}

func engineWith(t *testing.T, extra map[string]any) *Plugin {
	t.Helper()
	cfg := map[string]any{"root": reachableDir(t), "kill_grace": "500ms"}
	for k, v := range extra {
		cfg[k] = v
	}
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure(%v): %v %v", cfg, err, resp)
	}
	return p
}

func TestContainmentIsCgroupWhereTheHostHasOne(t *testing.T) {
	p := newEngine(t)
	_, err := host.cgroups()
	if p.config().cgroup != (err == nil) {
		t.Fatalf("auto containment chose cgroup=%v while cgroups give %v", p.config().cgroup, err)
	}
	if os.Geteuid() == 0 && err != nil {
		if dirs, derr := cgroup2Dirs(); derr == nil {
			t.Logf("running as root with cgroup2 at %v, yet: %v", dirs, err)
		}
	}
}

func TestDetachedProcessesDieOnCancel(t *testing.T) {
	for _, mode := range containments(t) {
		t.Run(mode, func(t *testing.T) {
			p := engineWith(t, map[string]any{"containment": mode})
			ws := setup(t, p)
			f := newMarker(t)
			done := make(chan *engine.ExecResult, 1)
			go func() {
				res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "e", Env: f.env(), Script: escapeScript("sleep 1000")}, nil)
				if err != nil {
					t.Errorf("Exec: %v", err)
				}
				done <- res
			}()
			f.waitRecorded(t, 4)
			if err := p.Cancel(context.Background(), ws.ID, "e"); err != nil {
				t.Fatal(err)
			}
			res := <-done
			if res == nil || !res.Cancelled {
				t.Fatalf("result %+v, want cancelled", res)
			}
			f.waitGone(t, 2*time.Second, "cancel")
		})
	}
}

func TestDetachedProcessesDieOnTimeout(t *testing.T) {
	for _, mode := range containments(t) {
		t.Run(mode, func(t *testing.T) {
			p := engineWith(t, map[string]any{"containment": mode})
			ws := setup(t, p)
			f := newMarker(t)
			start := time.Now()
			res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Env: f.env(), Timeout: 3 * time.Second, Script: escapeScript("sleep 1000")}, nil)
			if err != nil || !res.TimedOut {
				t.Fatalf("Exec: %+v %v, want timed out", res, err)
			}
			if f.recorded() < 4 {
				t.Fatalf("the processes did not all start before the timeout (%d)", f.recorded())
			}
			f.waitGone(t, 2*time.Second, "timeout")
			t.Logf("timed out and cleaned up in %s", time.Since(start))
		})
	}
}

func TestDetachedProcessesDieWhenTheCommandExits(t *testing.T) {
	for _, mode := range containments(t) {
		t.Run(mode, func(t *testing.T) {
			p := engineWith(t, map[string]any{"containment": mode})
			ws := setup(t, p)
			f := newMarker(t)
			var out bytes.Buffer
			var mu sync.Mutex
			res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Env: f.env(), Script: escapeScript("exit 0")},
				func(_ string, b []byte) error { mu.Lock(); out.Write(b); mu.Unlock(); return nil })
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Exec: %+v %v %q", res, err, out.String())
			}
			f.waitGone(t, 2*time.Second, "the command's exit")
		})
	}
}

// TestEngineKilledLeavesNoProcesses runs the engine as a real plugin
// process (the palvella binary of PALVELLA_BIN, or this test binary),
// SIGKILLs it while a command runs, and checks that none of the command's
// processes survives and its workspace is removed. With process-group
// containment, processes that left the group (setsid) do survive an engine
// killed by SIGKILL: the test checks what that mode promises, that the
// rest of the group dies.
func TestEngineKilledLeavesNoProcesses(t *testing.T) {
	for _, mode := range containments(t) {
		t.Run(mode, func(t *testing.T) {
			var cmd *exec.Cmd
			if bin := os.Getenv("PALVELLA_BIN"); bin != "" {
				cmd = exec.Command(bin, "plugin", "serve", Name)
				cmd.Env = sdktest.MinimalEnv()
			} else {
				self, err := os.Executable()
				if err != nil {
					t.Fatal(err)
				}
				cmd = exec.Command(self)
				cmd.Env = append(sdktest.MinimalEnv(), "PALVELLA_ENGINE_LOCAL_TEST_SERVE=1")
			}
			proc := sdktest.Launch(t, cmd)
			pid := proc.Client.ReattachConfig().Pid
			eng := sdktest.Dispense[engine.Engine](t, proc, sdk.CategoryEngine)
			root := reachableDir(t)
			resp, err := eng.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": root, "containment": mode}})
			if err != nil || sdk.HasErrors(resp.Diagnostics) {
				t.Fatalf("Configure: %v %v", err, resp)
			}
			ws, err := eng.Setup(context.Background(), &engine.SetupRequest{Job: t.Name()})
			if err != nil {
				t.Fatal(err)
			}
			f := newMarker(t)
			go func() {
				_, _ = eng.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Env: f.env(), Script: escapeScript("sleep 1000")}, nil)
			}()
			f.waitRecorded(t, 4)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill the engine (pid %d): %v", pid, err)
			}
			killed := time.Now()
			if mode == "process_group" {
				waitMarked(t, f, f.mark+"-group", 3*time.Second)
				t.Logf("process group mode: %d processes that left the group survive the engine's SIGKILL, as documented", len(f.live()))
				f.killAll()
			} else {
				f.waitGone(t, 3*time.Second, "the engine's SIGKILL")
				t.Logf("every process gone %s after the engine's SIGKILL", time.Since(killed))
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := os.Stat(filepath.Dir(ws.Workdir))
				_, serr := os.Stat(filepath.Dir(ws.Workdir) + stateSuffix)
				if os.IsNotExist(err) && os.IsNotExist(serr) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the workspace of the killed engine is still there (%v, record %v)", err, serr)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// waitMarked waits until no process whose argv holds mark runs.
func waitMarked(t *testing.T, f markerFixture, mark string, d time.Duration) {
	t.Helper()
	g := markerFixture{mark: mark, pids: f.pids}
	g.waitGone(t, d, "the engine's SIGKILL")
}

// TestNextEngineKillsWhatAPreviousOneLeft plays an engine that died
// without its supervisor: a record of a workspace whose owner is gone,
// naming a running command, is found by the next engine on the same root,
// which kills the command and removes the workspace.
func TestNextEngineKillsWhatAPreviousOneLeft(t *testing.T) {
	root := reachableDir(t)
	f := newMarker(t)
	// A command of the "previous engine": its own process group.
	cmd := exec.Command("sh", "-c", `echo $$ >> "$PIDS"; while :; do sleep 1; done`, f.mark+"-left")
	cmd.Env = append(os.Environ(), "PIDS="+f.pids)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	f.waitRecorded(t, 1)
	info, _ := readProc(cmd.Process.Pid)
	ws := filepath.Join(root, "ws-left")
	if err := os.MkdirAll(filepath.Join(ws, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	// An owner that no longer runs: this process's pid with another start.
	host.init()
	gone := procIdentity{PID: os.Getpid(), Start: host.self.Start + 1}
	if err := writeRecord(ws, &wsRecord{Owner: gone, Execs: []execRecord{{PGID: cmd.Process.Pid, Start: info.start}}}); err != nil {
		t.Fatal(err)
	}
	// And a workspace of a live engine (this one), which must stay.
	live := filepath.Join(root, "ws-live")
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(live, &wsRecord{Owner: host.self}); err != nil {
		t.Fatal(err)
	}
	engineWith(t, map[string]any{"root": root})
	f.waitGone(t, 2*time.Second, "the next engine's start")
	if _, err := os.Stat(ws); !os.IsNotExist(err) {
		t.Fatalf("the interrupted workspace is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the workspace of a running engine was removed: %v", err)
	}
}

func configRequest(t *testing.T, extra map[string]any) *sdk.ConfigureRequest {
	t.Helper()
	cfg := map[string]any{"root": reachableDir(t)}
	for k, v := range extra {
		cfg[k] = v
	}
	return &sdk.ConfigureRequest{Config: cfg}
}

func hasErrorOn(diags []sdk.Diagnostic, field string) bool {
	for _, d := range diags {
		if d.Severity == sdk.SeverityError && d.Field == field {
			return true
		}
	}
	return false
}

// TestCgroupsOfAGoneEngineAreKilled plays an engine that died with its
// supervisor and left no record: its cgroup directory, with a process in
// it, is killed and removed by the next engine's sweep.
func TestCgroupsOfAGoneEngineAreKilled(t *testing.T) {
	h, err := host.cgroups()
	if err != nil {
		t.Logf("no cgroups here (%v): nothing of this kind can be left", err)
		return
	}
	parent := filepath.Dir(h.instance)
	gone := filepath.Join(parent, fmt.Sprintf("palvella-engine-%d-%d", os.Getpid(), host.self.Start+1))
	if err := os.MkdirAll(filepath.Join(gone, "exec-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeCgroup(gone, time.Second) })
	fd, err := os.Open(filepath.Join(gone, "exec-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	f := newMarker(t)
	cmd := exec.Command("sh", "-c", `while :; do sleep 1; done`, f.mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd()), Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	sweepCgroups(parent, h.hasKill)
	f.waitGone(t, 2*time.Second, "the sweep of a gone engine's cgroups")
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Fatalf("the gone engine's cgroup is still there: %v", err)
	}
	if _, err := os.Stat(h.instance); err != nil {
		t.Fatalf("the sweep removed this engine's own cgroup: %v", err)
	}
}

// TestNextEngineKillsACgroupEnginesLeftovers plays an engine that uses
// cgroups and died with its supervisor (both SIGKILLed, so nothing
// cleaned up): its commands' processes, setsid ones included, run on.
// The next engine's sweep of the root finds the workspace's record, which
// names the dead engine's cgroup (written once at Setup: no command's
// start or end rewrites it), kills everything in it and removes the
// workspace.
func TestNextEngineKillsACgroupEnginesLeftovers(t *testing.T) {
	if _, err := host.cgroups(); err != nil {
		t.Skipf("no cgroups here (%v): the process-group record is TestNextEngineKillsWhatAPreviousOneLeft's", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(sdktest.MinimalEnv(), "PALVELLA_ENGINE_LOCAL_TEST_SERVE=1")
	proc := sdktest.Launch(t, cmd)
	pid := proc.Client.ReattachConfig().Pid
	eng := sdktest.Dispense[engine.Engine](t, proc, sdk.CategoryEngine)
	root := reachableDir(t)
	resp, err := eng.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": root, "containment": "cgroup"}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	ws, err := eng.Setup(context.Background(), &engine.SetupRequest{Job: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	wsDir := filepath.Dir(ws.Workdir)
	f := newMarker(t)
	go func() {
		_, _ = eng.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Env: f.env(), Script: escapeScript("sleep 1000")}, nil)
	}()
	f.waitRecorded(t, 4)
	var rec wsRecord
	if b, err := os.ReadFile(statePath(wsDir)); err != nil || json.Unmarshal(b, &rec) != nil || rec.Cgroup == "" || len(rec.Execs) != 0 {
		t.Fatalf("the record of a workspace with a running command: %+v (%v), want the engine's cgroup and no command", rec, err)
	}
	// The supervisor first, so that nothing cleans up after the engine.
	killed := 0
	for _, c := range children(pid) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.pid)); err == nil && bytes.Contains(b, []byte(helperSupervise)) {
			if err := syscall.Kill(c.pid, syscall.SIGKILL); err == nil {
				killed++
			}
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d supervisors of engine %d, want 1", killed, pid)
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the engine (pid %d): %v", pid, err)
	}
	for i := 0; ; i++ {
		if _, ok := readProc(pid); !ok || i > 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(f.live()); n < 3 {
		t.Fatalf("%d processes of the job left after killing the engine and its supervisor, want the 3 that left its process group at least: the test proves nothing", n)
	}
	if err := sweepRoot(root, procIdentity{}); err != nil {
		t.Fatal(err)
	}
	f.waitGone(t, 3*time.Second, "the next engine's sweep")
	if _, err := os.Stat(wsDir); !os.IsNotExist(err) {
		t.Fatalf("the interrupted workspace is still there: %v", err)
	}
	if _, err := os.Stat(rec.Cgroup); !os.IsNotExist(err) {
		t.Fatalf("the dead engine's cgroup is still there: %v", err)
	}
}
