package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// plugin upgrade goes on past a plugin that fails, upgrades the others,
// sums up the failures and exits non-zero; the failed plugin stays on the
// version it had, whole.
func TestPluginUpgradeGoesOnPastAFailure(t *testing.T) {
	work := t.TempDir()
	greeter := buildGreeter(t, work, "1.0.0", "1.0.1")
	const bad = "credential-alpha" // sorted first in the lock, so upgraded first
	alpha := buildGreeterNamed(t, work, bad, "1.0.0", "1.0.1")
	key := filepath.Join(work, "root.key")
	must(t, work, "registry", "keygen", "--out", key)
	acme := filepath.Join(work, "acme")
	must(t, work, "registry", "init", acme, "--name", "acme", "--root-key", key)
	for _, bin := range []string{greeter["1.0.0"], alpha["1.0.0"]} {
		must(t, work, "registry", "publish", acme, "--key", key, "--plugin", bin, "--license", "MIT")
	}
	url, _ := serveRegistry(t, acme)
	home := newHome(t)
	must(t, home, "registry", "add", "acme", url, "--root-key", key+".pub")
	must(t, home, "plugin", "add", "credential-greeter")
	must(t, home, "plugin", "add", bad)

	for _, bin := range []string{greeter["1.0.1"], alpha["1.0.1"]} {
		must(t, work, "registry", "publish", acme, "--key", key, "--plugin", bin, "--license", "MIT")
	}
	// The server now hands out damaged bytes for credential-alpha 1.0.1
	// (same size, one byte changed): its download fails the sha256 check.
	art := filepath.Join(acme, "artifacts", bad, "1.0.1", bad+"_"+runtime.GOOS+"_"+runtime.GOARCH)
	b, err := os.ReadFile(art)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(art, b, 0o755); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := palvella(t, home, "plugin", "upgrade")
	if code == 0 {
		t.Fatalf("plugin upgrade with a failure exited 0\nstdout: %s", out)
	}
	failedAt := strings.Index(out, "Could not upgrade "+bad)
	upgradedAt := strings.Index(out, "Upgraded credential-greeter 1.0.0 -> 1.0.1 (from registry acme)")
	if failedAt < 0 || upgradedAt < 0 || upgradedAt < failedAt {
		t.Fatalf("stdout %q: want the failure of %s, then the upgrade of credential-greeter", out, bad)
	}
	if !strings.Contains(out[failedAt:upgradedAt], "checksum") {
		t.Errorf("the failure does not say why: %q", out[failedAt:upgradedAt])
	}
	if !strings.Contains(errOut, "1 of 2 plugins could not be upgraded ("+bad+")") {
		t.Errorf("stderr %q: want the summary naming %s", errOut, bad)
	}
	lk := readLock(t, home)
	if lk["credential-greeter"]["version"] != "1.0.1" || lk[bad]["version"] != "1.0.0" {
		t.Errorf("lock after the upgrade: greeter %v, %s %v", lk["credential-greeter"]["version"], bad, lk[bad]["version"])
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "plugins", bad)); len(entries) != 1 || entries[0].Name() != "1.0.0" {
		t.Errorf("files of %s after its failed upgrade: %v, want only 1.0.0", bad, entries)
	}
	must(t, home, "plugin", "verify") // both installed plugins are whole

	// -o json: one row per plugin, the failure in its row, still non-zero.
	out, _, code = palvella(t, home, "plugin", "upgrade", "-o", "json")
	var rows []installRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("upgrade -o json: %v\n%s", err, out)
	}
	if code == 0 || len(rows) != 2 || rows[0].Name != bad || rows[0].Error == "" ||
		rows[1].Name != "credential-greeter" || rows[1].Version != "1.0.1" || rows[1].Error != "" {
		t.Errorf("upgrade -o json: exit %d, rows %+v", code, rows)
	}
}
