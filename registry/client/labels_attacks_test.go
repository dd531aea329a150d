package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/lock"
)

func rewriteLock(t *testing.T, c *client.Client, fn func(e *lock.Entry)) {
	t.Helper()
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	fn(&lf.Plugins[0])
	if err := lf.Save(c.LockPath); err != nil {
		t.Fatal(err)
	}
}

// Issue 13: "a version changed by hand shows in plugin list". Verify ran
// only the hash check, which a version edit does not touch.
func TestAttackLockVersionEdited(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	install(t, c, "1.0.0")
	rewriteLock(t, c, func(e *lock.Entry) { e.Version = "9.9.9" })
	if _, err := c.Verify(); err != nil {
		t.Fatalf("the cheap Verify runs no binary and cannot see a version edit: %v", err)
	}
	checks, err := c.VerifyDeep(context.Background(), 0)
	if !errors.Is(err, registry.ErrChecksum) || len(checks) != 1 || !checks[0].Edited {
		t.Fatalf("VerifyDeep = %+v, %v; want one edited check", checks, err)
	}
}

// Issue 13: "a swapped binary with a matching lock hash passes plugin
// verify although the lock's artifact hash differs".
func TestAttackLockSwappedBinaryAndHash(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	res := install(t, c, "1.0.0")
	evil, err := os.ReadFile(regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "1.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	evil = append(evil, "evil"...)
	if err := os.WriteFile(res.Entry.Path, evil, 0o755); err != nil {
		t.Fatal(err)
	}
	rewriteLock(t, c, func(e *lock.Entry) { e.SHA256 = sha256File(t, res.Entry.Path) })
	checks, err := c.Verify()
	if !errors.Is(err, registry.ErrChecksum) || len(checks) != 1 || !checks[0].Edited {
		t.Fatalf("Verify = %+v, %v; want one edited check (the artifact's hash is not the lock's)", checks, err)
	}
}

// An archive's executable has its own hash: not a hand edit.
func TestLockUnpackedIsNotEdited(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	bin, _ := os.ReadFile(regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "1.1.0"}))
	publishArchive(t, f, "1.1.0", tarGz(t, []tarEntry{{name: plugin, data: bin}}))
	c := newClient(t, reg(f, f.Dir))
	res := install(t, c, "1.1.0")
	if !res.Entry.Unpacked {
		t.Fatal("an archive install is not recorded as unpacked")
	}
	if _, err := c.VerifyDeep(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

// A broken lock entry is one failed check, not a failure of the whole lock,
// and Remove takes it out.
func TestBrokenLockEntryIsSetApart(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	install(t, c, "1.0.0")
	broken := []byte(`{"formatVersion":1,"plugins":[` + string(mustEntryJSON(t, c)) + `,{"name":"engine-odd","version":"1.0.0","source":"registry","categories":["engine"],"protocolVersions":[1],"path":"/x","sha256":"nope"}]}`)
	if err := os.WriteFile(c.LockPath, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	checks, err := c.Verify()
	if err == nil || len(checks) != 2 || checks[0].Err != nil || !checks[1].Broken || checks[1].Name != "engine-odd" {
		t.Fatalf("Verify = %+v, %v; want the good entry ok and engine-odd broken", checks, err)
	}
	var re *registry.Error
	if !errors.As(checks[1].Err, &re) || re.Field != "plugins[1].sha256" {
		t.Errorf("the broken entry's error %v should name plugins[1].sha256", checks[1].Err)
	}
	if err := c.Remove(context.Background(), "engine-odd"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(); err != nil {
		t.Fatalf("after removing the broken entry: %v", err)
	}
}

func mustEntryJSON(t *testing.T, c *client.Client) []byte {
	t.Helper()
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(lf.Plugins[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A yanked install is remembered from the index, and un-yanking forgets it.
func TestYankedStateIsRemembered(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0", "1.1.0")
	c := newClient(t, reg(f, f.Dir))
	install(t, c, "1.0.0")
	if _, err := publishYank(f, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := client.LoadState(c.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if why, ok := st.YankedReason("acme", plugin, "1.0.0"); !ok || why != "crashes on start" {
		t.Errorf("YankedReason = %q, %v; want the reason", why, ok)
	}
	if _, ok := st.YankedReason("acme", plugin, "1.1.0"); ok {
		t.Error("1.1.0 is not yanked")
	}
}
