package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// manifestAs writes bin's manifest with another name and version, so one
// real binary can be published under a name of the test's choosing.
func manifestAs(t *testing.T, dir, bin, name, version string) string {
	t.Helper()
	out, err := exec.Command(bin, "--describe").Output()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	m["name"], m["version"] = name, version
	b, _ := json.Marshal(m)
	p := filepath.Join(dir, name+"-"+version+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The attacks on who owns a name, against the real binary and a real
// `registry serve`.
func TestRegistryOwnershipEndToEnd(t *testing.T) {
	work := t.TempDir()
	bins := buildGreeter(t, work, "1.0.0", "1.0.1")
	const name = "credential-greeter"
	key := filepath.Join(work, "root.key")
	must(t, work, "registry", "keygen", "--out", key)
	acme := filepath.Join(work, "acme")
	must(t, work, "registry", "init", acme, "--name", "acme", "--root-key", key)
	must(t, work, "registry", "publish", acme, "--key", key, "--plugin", bins["1.0.0"], "--license", "MIT")
	// The registry's operator publishes a first-party name, marked official.
	must(t, work, "registry", "publish", acme, "--key", key, "--plugin", bins["1.0.0"], "--license", "MIT", "--official",
		"--manifest", manifestAs(t, work, bins["1.0.0"], "authentication-token", "9.0.0"))
	// And leaves a key file under artifacts/.
	os.WriteFile(filepath.Join(acme, "artifacts", "root.key"), []byte("not for you"), 0o600)
	url, _ := serveRegistry(t, acme)
	home := newHome(t)
	must(t, home, "registry", "add", "acme", url, "--root-key", key+".pub")

	t.Run("a first-party name is never taken", func(t *testing.T) {
		for _, args := range [][]string{
			{"plugin", "add", "authentication-token"},
			{"plugin", "add", "authentication-token", "--replace"},
			{"plugin", "add", "authentication-token", "--registry", "acme", "--replace"},
		} {
			msg := refused(t, home, args...)
			if !strings.Contains(msg, "first-party") {
				t.Errorf("%s: stderr %q, want the first-party refusal", strings.Join(args, " "), msg)
			}
		}
		if _, err := os.Stat(filepath.Join(home, "plugins", "authentication-token")); !os.IsNotExist(err) {
			t.Errorf("files installed for a refused first-party name: %v", err)
		}
		var info pluginInfo
		if err := json.Unmarshal([]byte(must(t, home, "plugin", "info", name, "-o", "json")), &info); err != nil {
			t.Fatal(err)
		}
		if info.Official {
			t.Errorf("plugin info says official for a plugin of a private root")
		}
	})

	t.Run("registry serve serves only what the index references", func(t *testing.T) {
		resp, err := http.Get(url + "/artifacts/root.key")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || strings.Contains(string(body), "not for you") {
			t.Errorf("GET /artifacts/root.key = %d %q, want 404", resp.StatusCode, body)
		}
	})

	t.Run("a local binary does not silently replace a signed install", func(t *testing.T) {
		must(t, home, "plugin", "add", name)
		msg := refused(t, home, "plugin", "add", bins["1.0.1"], "--allow-unsigned")
		if !strings.Contains(msg, "--replace") || !strings.Contains(msg, "registry acme") {
			t.Errorf("local over signed: stderr %q, want the --replace refusal naming the source", msg)
		}
		if e := readLock(t, home)[name]; e["source"] != "registry" || e["version"] != "1.0.0" {
			t.Errorf("lock after the refusal: %v", e)
		}
		must(t, home, "plugin", "add", bins["1.0.1"], "--allow-unsigned", "--replace")
		if e := readLock(t, home)[name]; e["source"] != "local" {
			t.Errorf("lock after --replace: %v", e)
		}
		must(t, home, "plugin", "remove", name)
	})

	t.Run("a name owned by a registry added for it", func(t *testing.T) {
		// A second, open registry lists the same name at a higher version.
		key2 := filepath.Join(work, "other.key")
		must(t, work, "registry", "keygen", "--out", key2)
		other := filepath.Join(work, "other")
		must(t, work, "registry", "init", other, "--name", "other", "--root-key", key2)
		must(t, work, "registry", "publish", other, "--key", key2, "--plugin", bins["1.0.1"], "--license", "MIT")
		h := newHome(t)
		must(t, h, "registry", "add", "other", other, "--root-key", key2+".pub")
		must(t, h, "registry", "add", "acme", url, "--root-key", key+".pub", "--names", "credential-")
		var row installRow
		if err := json.Unmarshal([]byte(must(t, h, "plugin", "add", name, "-o", "json")), &row); err != nil {
			t.Fatal(err)
		}
		if row.Registry != "acme" || row.Version != "1.0.0" {
			t.Fatalf("installed %+v, want 1.0.0 from acme, which owns credential-*", row)
		}
		if msg := refused(t, h, "plugin", "add", name, "--registry", "other", "--replace"); !strings.Contains(msg, "belongs to registry acme") {
			t.Errorf("choosing the other registry: stderr %q", msg)
		}
		// Two open registries: a choice is needed, then kept.
		h2 := newHome(t)
		must(t, h2, "registry", "add", "other", other, "--root-key", key2+".pub")
		must(t, h2, "registry", "add", "acme", url, "--root-key", key+".pub")
		if msg := refused(t, h2, "plugin", "add", name); !strings.Contains(msg, "--registry") || !strings.Contains(msg, "ambiguous") {
			t.Errorf("ambiguous name: stderr %q", msg)
		}
		must(t, h2, "plugin", "add", name, "--registry", "acme")
		must(t, work, "registry", "publish", acme, "--key", key, "--plugin", bins["1.0.1"], "--license", "MIT")
		must(t, work, "registry", "publish", other, "--key", key2, "--plugin", bins["1.0.0"], "--license", "MIT")
		out := must(t, h2, "plugin", "upgrade")
		if !strings.Contains(out, "from registry acme") || readLock(t, h2)[name]["registry"] != "acme" {
			t.Errorf("upgrade left the lock's registry: %q %v", out, readLock(t, h2)[name])
		}
	})

	t.Run("rollback memory survives remove and add", func(t *testing.T) {
		h := newHome(t)
		old := readFile(t, filepath.Join(acme, "index.json"))
		must(t, h, "registry", "add", "acme", acme, "--root-key", key+".pub")
		must(t, work, "registry", "resign", acme, "--key", key)
		must(t, h, "plugin", "search") // reads the new version
		must(t, h, "registry", "remove", "acme")
		os.WriteFile(filepath.Join(acme, "index.json"), []byte(old), 0o644)
		if msg := refused(t, h, "registry", "add", "acme", acme, "--root-key", key+".pub"); !strings.Contains(msg, "rollback") {
			t.Errorf("re-adding with an old index: stderr %q, want the rollback refusal", msg)
		}
		_, errOut, code := palvella(t, h, "registry", "reset-rollback", "acme")
		if code != 0 || !strings.Contains(errOut, "rollback memory reset") {
			t.Errorf("reset-rollback: exit %d, stderr %q; want a logged reset", code, errOut)
		}
		must(t, h, "registry", "add", "acme", acme, "--root-key", key+".pub")
	})
}

// The index must be signed for the name it is configured under.
func TestRegistryAddRefusesIndexOfAnotherName(t *testing.T) {
	work := t.TempDir()
	key := filepath.Join(work, "root.key")
	must(t, work, "registry", "keygen", "--out", key)
	staging := filepath.Join(work, "staging")
	must(t, work, "registry", "init", staging, "--name", "acme-staging", "--root-key", key)
	home := newHome(t)
	msg := refused(t, home, "registry", "add", "acme", staging, "--root-key", key+".pub")
	if !strings.Contains(msg, `signed for registry "acme-staging"`) {
		t.Fatalf("stderr %q, want the name refusal", msg)
	}
	if strings.Count(msg, "acme") > 0 && strings.Contains(msg, "add registry") {
		t.Errorf("doubled prefix in %q", msg)
	}
}
