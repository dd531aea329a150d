package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/internal/regtest"
)

// With KeepReplaced, an upgrade and a removal leave the old files for
// Collect, which deletes them only once nothing claims them.
func TestKeepReplacedLeavesOldVersionsToCollect(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, serve(t, f).URL))
	c.KeepReplaced = true
	ctx := context.Background()
	if _, err := c.Install(ctx, client.Request{Name: plugin, Constraint: "^1"}); err != nil {
		t.Fatal(err)
	}
	publishVersions(t, f, "1.1.0")
	up, err := c.Upgrade(ctx, plugin)
	if err != nil || up == nil {
		t.Fatalf("upgrade = %+v, %v", up, err)
	}
	old := filepath.Join(c.PluginDir, plugin, "1.0.0")
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("the replaced version was deleted at once: %v", err)
	}
	// Still in use: kept.
	removed, err := c.Collect(func(dir string) bool { return dir == old })
	if err != nil || len(removed) != 0 {
		t.Fatalf("collect while the old version is in use = %v, %v; want nothing deleted", removed, err)
	}
	// No longer in use: deleted; the locked version stays.
	removed, err = c.Collect(nil)
	if err != nil || len(removed) != 1 || removed[0] != old {
		t.Fatalf("collect = %v, %v; want %s deleted", removed, err, old)
	}
	if describeVersion(t, up.Entry.Path) != "1.1.0" {
		t.Fatal("collect touched the locked version")
	}
	// A removal keeps the files until collected, then the plugin's
	// directory goes too.
	if err := c.Remove(ctx, plugin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(up.Entry.Path); err != nil {
		t.Fatalf("remove deleted the binary at once: %v", err)
	}
	if _, err := c.Collect(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.PluginDir, plugin)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the removed plugin's directory is still there after collect: %v", err)
	}
}
