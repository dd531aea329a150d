package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keyID returns the key id printed by `registry keygen`.
func keyID(t *testing.T, keygenOut string) string {
	t.Helper()
	m := regexp.MustCompile(`Key id: ([0-9a-f]{16})`).FindStringSubmatch(keygenOut)
	if m == nil {
		t.Fatalf("keygen printed no key id: %q", keygenOut)
	}
	return m[1]
}

// The compromise-recovery walkthrough of docs/registry/keys.md, step by
// step, with real keys, a real `registry serve` and the real binary.
func TestKeyLifecycleWalkthrough(t *testing.T) {
	work := t.TempDir()
	bins := buildGreeter(t, work, "1.0.0", "1.0.1")
	const name = "credential-greeter"
	k := func(n string) string { return filepath.Join(work, "keys", n) }
	must(t, work, "registry", "keygen", "--out", k("root.key"))
	alice := keyID(t, must(t, work, "registry", "keygen", "--out", k("alice.key")))
	acme := filepath.Join(work, "acme")

	// 1. The root key holder creates the registry and delegates once.
	must(t, work, "registry", "init", acme, "--name", "acme", "--root-key", k("root.key"))
	must(t, work, "registry", "delegate", acme, "--key", k("root.key"), "--publisher", k("alice.key.pub"), "--plugins", "credential-*", "--index")

	// 2. Alice publishes alone; the root key stays offline.
	must(t, work, "registry", "publish", acme, "--key", k("alice.key"), "--plugin", bins["1.0.0"], "--license", "MIT")
	msg := refused(t, work, "registry", "publish", acme, "--key", k("alice.key"), "--plugin", bins["1.0.0"], "--license", "MIT",
		"--manifest", manifestAs(t, work, bins["1.0.0"], "action-elsewhere", "1.0.0"))
	if !strings.Contains(msg, "may only sign credential-*") {
		t.Errorf("publish outside the delegation: %q", msg)
	}

	url, _ := serveRegistry(t, acme)
	early := newHome(t)
	must(t, early, "registry", "add", "acme", url, "--root-key", k("root.key.pub"), "--names", "credential-greeter")
	must(t, early, "plugin", "add", name+"@^1.0")
	row := installedRow(t, early, name)
	if row.State != "ready" || row.Registry != "acme" || strings.Join(row.SignedBy, ",") != alice {
		t.Fatalf("after install: %+v", row)
	}

	// 3. Alice's key leaks. The root revokes it.
	must(t, work, "registry", "revoke-key", acme, "--key", k("root.key"), alice, "--reason", "laptop stolen")
	late := newHome(t)
	must(t, late, "registry", "add", "acme", url, "--root-key", k("root.key.pub"), "--names", "credential-greeter")
	if msg := refused(t, late, "plugin", "add", name); !strings.Contains(msg, "revoked") || !strings.Contains(msg, "laptop stolen") {
		t.Errorf("install of a version signed only by the revoked key: %q", msg)
	}
	// The early user learns of it at the next read of the registry, and
	// sees it without the network afterwards.
	must(t, early, "plugin", "info", name)
	if row := installedRow(t, early, name); row.State != "revoked" || !strings.Contains(row.Problem, alice) {
		t.Errorf("plugin list after the revocation: %+v", row)
	}
	_, errOut, code := palvella(t, early, "plugin", "verify")
	out, _, _ := palvella(t, early, "plugin", "verify", "-o", "json")
	var checks []verifyRow
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatal(err)
	}
	if code == 0 || len(checks) != 1 || checks[0].Status != "revoked" {
		t.Errorf("plugin verify after the revocation: exit %d, %+v, stderr %q", code, checks, errOut)
	}

	// 4. Recovery: a new key signs the same bytes; no new version.
	bob := keyID(t, must(t, work, "registry", "keygen", "--out", k("bob.key")))
	must(t, work, "registry", "delegate", acme, "--key", k("root.key"), "--publisher", k("bob.key.pub"), "--plugins", "credential-*", "--index")
	if out := must(t, work, "registry", "sign-artifacts", acme, "--key", k("bob.key"), "--from", alice); !strings.Contains(out, "Signed "+name+" 1.0.0") {
		t.Errorf("sign-artifacts: %q", out)
	}
	must(t, late, "plugin", "add", name)
	if row := installedRow(t, late, name); row.State != "ready" || strings.Join(row.SignedBy, ",") != bob || row.Version != "1.0.0" {
		t.Errorf("install after re-signing: %+v", row)
	}
	// The early user reinstalls the same version, now signed by bob.
	must(t, early, "plugin", "remove", name)
	must(t, early, "plugin", "add", name+"@^1.0")
	if row := installedRow(t, early, name); row.State != "ready" || strings.Join(row.SignedBy, ",") != bob {
		t.Errorf("reinstall after re-signing: %+v", row)
	}

	// 5. The root rotates to a new key; clients pinned to the old one follow.
	must(t, work, "registry", "keygen", "--out", k("root2.key"))
	must(t, work, "registry", "rotate-root", acme, "--key", k("root.key"), "--new-root", k("root2.key"))
	if msg := refused(t, work, "registry", "resign", acme, "--key", k("root.key")); !strings.Contains(msg, "not the registry's current root key") {
		t.Errorf("re-signing with the replaced root: %q", msg)
	}
	must(t, work, "registry", "publish", acme, "--key", k("bob.key"), "--plugin", bins["1.0.1"])
	if out := must(t, early, "plugin", "upgrade", name); !strings.Contains(out, "1.0.1") {
		t.Errorf("upgrade through the rotated root: %q", out)
	}
	if out := must(t, work, "registry", "verify", acme, "--root-key", k("root.key.pub")); !strings.Contains(out, "OK") {
		t.Errorf("registry verify pinned to the old root: %q", out)
	}
	fresh := newHome(t)
	must(t, fresh, "registry", "add", "acme", url, "--root-key", k("root2.key.pub"), "--names", "credential-greeter")
	must(t, fresh, "plugin", "add", name)
}
