package pluginhost_test

import (
	"context"
	"errors"
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

// versionSpec is the test plugin as version v: it describes itself with v
// and is configured with it.
func versionSpec(t *testing.T, v string) pluginhost.Spec {
	t.Helper()
	sum, err := pluginhost.SHA256File(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	return pluginhost.Spec{Name: "test", Source: pluginhost.SourceInstalled, Path: testPlugin, SHA256: sum, Version: v,
		Env: map[string]string{"PLUGIN_VERSION": v}, Config: map[string]any{"version": v}}
}

func liveManager(t *testing.T, drained func(pluginhost.Spec)) *pluginhost.Manager {
	t.Helper()
	m, err := pluginhost.New(pluginhost.Options{
		Logger:        hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn}),
		CheckInterval: 20 * time.Millisecond,
		MinBackoff:    20 * time.Millisecond,
		StartTimeout:  10 * time.Second,
		OnDrained:     drained,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Shutdown)
	return m
}

func leaseCred(t *testing.T, m *pluginhost.Manager) (*pluginhost.Lease, credential.Credential) {
	t.Helper()
	l, err := m.Lease("test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pluginhost.LeaseClient[credential.Credential](context.Background(), l, sdk.CategoryCredential)
	if err != nil {
		t.Fatalf("lease client: %v", err)
	}
	return l, c
}

func currentCred(t *testing.T, m *pluginhost.Manager) credential.Credential {
	t.Helper()
	p, err := m.Plugin("test")
	if err != nil {
		t.Fatal(err)
	}
	return credClient(t, p)
}

func pidOf(t *testing.T, c credential.Credential) int {
	t.Helper()
	pid, err := strconv.Atoi(value(t, c, "pid"))
	if err != nil || pid == 0 {
		t.Fatalf("pid %q: %v", value(t, c, "pid"), err)
	}
	return pid
}

// exits waits until the process pid is gone.
func exits(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after %s", pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func instances(t *testing.T, statuses []pluginhost.Status, name string) []pluginhost.Instance {
	t.Helper()
	for _, st := range statuses {
		if st.Name == name {
			return st.Instances
		}
	}
	t.Fatalf("no plugin %q in %+v", name, statuses)
	return nil
}

func TestUpgradeUnderALeaseDrainsTheOldVersion(t *testing.T) {
	var mu sync.Mutex
	var drained []string
	m := liveManager(t, func(s pluginhost.Spec) {
		mu.Lock()
		drained = append(drained, s.Version)
		mu.Unlock()
	})
	if _, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	// A job holds version 1 and has a call in flight on it.
	lease, old := leaseCred(t, m)
	oldPID := pidOf(t, old)
	slow := make(chan string, 1)
	go func() {
		s, err := old.Get(context.Background(), "slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		slow <- string(s.Data["value"])
	}()
	time.Sleep(50 * time.Millisecond) // let the call reach the plugin

	res, err := m.Sync([]pluginhost.Spec{versionSpec(t, "2.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Replaced, ",") != "test" || len(res.Added)+len(res.Removed) != 0 {
		t.Fatalf("sync result = %+v, want test replaced", res)
	}
	// New work goes to version 2, in a new process.
	cur := currentCred(t, m)
	newPID := pidOf(t, cur)
	if newPID == oldPID {
		t.Fatalf("after the upgrade new work went to the old process %d", oldPID)
	}
	if got := value(t, cur, "config"); !strings.Contains(got, "2.0.0") {
		t.Errorf("new version configured with %q, want version 2.0.0", got)
	}
	// Both run; the API shows which serves what.
	ins := instances(t, m.List(), "test")
	if len(ins) != 2 || ins[0].Version != "2.0.0" || ins[0].State != pluginhost.InstanceServing || ins[0].PID != newPID ||
		ins[1].Version != "1.0.0" || ins[1].State != pluginhost.InstanceDraining || ins[1].PID != oldPID || ins[1].Leases != 1 || ins[1].Calls != 1 {
		t.Fatalf("instances while draining = %+v, want 2.0.0 serving (pid %d) and 1.0.0 draining (pid %d) with a lease and a call", ins, newPID, oldPID)
	}
	// The call in flight finishes on the old process, and the lease still
	// reaches it.
	if got := <-slow; got != strconv.Itoa(oldPID) {
		t.Fatalf("in-flight call answered %q, want the old process %d", got, oldPID)
	}
	if pid := pidOf(t, old); pid != oldPID {
		t.Fatalf("the lease's client reached pid %d, want the old version's %d", pid, oldPID)
	}
	if !alive(oldPID) {
		t.Fatal("the old version stopped while a lease held it")
	}
	// The last user done, the old process stops and is reported drained.
	lease.Release()
	exits(t, oldPID, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		d := strings.Join(drained, ",")
		mu.Unlock()
		if d == "1.0.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drained versions = %q, want 1.0.0", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ins := instances(t, m.List(), "test"); len(ins) != 1 || ins[0].PID != newPID {
		t.Errorf("instances after draining = %+v, want version 2 alone", ins)
	}
	if !alive(newPID) {
		t.Error("the new version stopped with the old one")
	}
}

func TestReplacedVersionWithoutUsersStopsAtOnce(t *testing.T) {
	m := liveManager(t, nil)
	if _, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	p, err := m.Plugin("test")
	if err != nil {
		t.Fatal(err)
	}
	oldPID := pidOf(t, credClient(t, p))
	if _, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.1")}); err != nil {
		t.Fatal(err)
	}
	exits(t, oldPID, 5*time.Second)
	// A client asked of the stale *Plugin reaches the version that
	// replaced it.
	if got := value(t, credClient(t, p), "config"); !strings.Contains(got, "1.0.1") {
		t.Errorf("client of the replaced plugin reached config %q, want version 1.0.1", got)
	}
	// The same specs again change nothing.
	res, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.1")})
	if err != nil || res.Changed() {
		t.Errorf("sync with the same specs = %+v, %v; want no change", res, err)
	}
}

func TestRemovedPluginFinishesItsCallThenStops(t *testing.T) {
	m := liveManager(t, nil)
	if _, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	c := currentCred(t, m)
	pid := pidOf(t, c)
	slow := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "slow")
		slow <- err
	}()
	time.Sleep(50 * time.Millisecond)
	gen := m.Generation()
	res, err := m.Sync(nil)
	if err != nil || strings.Join(res.Removed, ",") != "test" {
		t.Fatalf("sync = %+v, %v; want test removed", res, err)
	}
	if m.Generation() == gen {
		t.Error("the generation did not change with the removal")
	}
	if _, err := m.Plugin("test"); !errors.Is(err, pluginhost.ErrPluginNotFound) {
		t.Errorf("lookup of the removed plugin = %v, want ErrPluginNotFound", err)
	}
	if _, err := m.Lease("test"); !errors.Is(err, pluginhost.ErrPluginNotFound) {
		t.Errorf("lease of the removed plugin = %v, want ErrPluginNotFound", err)
	}
	// Still reported, as draining, while its call runs.
	rep := m.Report()
	if len(rep) != 1 || rep[0].State != pluginhost.StateDraining || len(rep[0].Instances) != 1 || rep[0].Instances[0].PID != pid {
		t.Fatalf("report while draining = %+v, want test draining on pid %d", rep, pid)
	}
	if len(m.List()) != 0 {
		t.Errorf("List shows a removed plugin: %+v", m.List())
	}
	if err := <-slow; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	exits(t, pid, 10*time.Second)
	if rep := m.Report(); len(rep) != 0 {
		t.Errorf("report after draining = %+v, want nothing", rep)
	}
}

func TestSyncWithABadSpecChangesNothing(t *testing.T) {
	m := liveManager(t, nil)
	if _, err := m.Sync([]pluginhost.Spec{versionSpec(t, "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	bad := versionSpec(t, "2.0.0")
	bad.SHA256 = "abc"
	other := versionSpec(t, "1.0.0")
	other.Name = "other"
	_, err := m.Sync([]pluginhost.Spec{other, bad})
	if err == nil || !strings.Contains(err.Error(), `plugin "test"`) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("sync with a bad checksum = %v, want an error naming the plugin and sha256", err)
	}
	if _, err := m.Plugin("other"); err == nil {
		t.Error("a refused sync added a plugin")
	}
	if got := value(t, currentCred(t, m), "config"); !strings.Contains(got, "1.0.0") {
		t.Errorf("a refused sync changed the plugin: config %q", got)
	}
}

func TestPathsKeepsTheBinariesOfDrainingVersions(t *testing.T) {
	m := liveManager(t, nil)
	v1 := versionSpec(t, "1.0.0")
	if _, err := m.Sync([]pluginhost.Spec{v1}); err != nil {
		t.Fatal(err)
	}
	lease, c := leaseCred(t, m)
	pid := pidOf(t, c)
	v2 := versionSpec(t, "2.0.0")
	v2.Path = v1.Path + "-v2" // never launched: Paths only reads specs
	if _, err := m.Sync([]pluginhost.Spec{v2}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Paths(), ","); got != v1.Path+","+v2.Path {
		t.Errorf("paths while draining = %s, want both versions", got)
	}
	lease.Release()
	exits(t, pid, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(m.Paths(), ",") != v2.Path {
		if time.Now().After(deadline) {
			t.Fatalf("paths after draining = %v, want the new version's only", m.Paths())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
