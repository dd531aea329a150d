package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry/registrytest"
)

// The public registry behind a firewall that drops packets: plugin add
// gives up within the connect timeout of registries.json, names the
// registry and says how to go on; with --registry the other one is read.
func TestRegistryConnectTimeoutNamesTheRegistry(t *testing.T) {
	work := t.TempDir()
	key := filepath.Join(work, "root.key")
	must(t, work, "registry", "keygen", "--out", key)
	acme := filepath.Join(work, "acme")
	must(t, work, "registry", "init", acme, "--name", "acme", "--root-key", key)
	home := newHome(t)
	must(t, home, "registry", "add", "acme", acme, "--root-key", key+".pub", "--names", "acme-*")
	// Point public at the dead address (registry add would refuse to save
	// a registry it cannot read) and bound the connect to 1s.
	p := filepath.Join(home, "registries.json")
	cfg := readFile(t, p)
	dead := registrytest.Blackhole(t)
	cfg = strings.Replace(cfg, `"registries": [`, `"timeouts": {"connect": "1s"}, "registries": [{"name": "public", "location": "`+dead+`"},`, 1)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	msg := refused(t, home, "plugin", "add", "acme-tool")
	took := time.Since(start)
	for _, want := range []string{"registry public", "timeout", "--registry", "palvella registry remove public"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q: want %q", msg, want)
		}
	}
	if took < time.Second || took > 10*time.Second {
		t.Errorf("plugin add gave up after %s, want just over the 1s connect timeout", took)
	}
	// Reading only acme works at once: the plugin is simply not there.
	start = time.Now()
	msg = refused(t, home, "plugin", "add", "acme-tool", "--registry", "acme")
	if strings.Contains(msg, "public") || !strings.Contains(msg, "not found") || time.Since(start) > 5*time.Second {
		t.Errorf("--registry acme: stderr %q after %s", msg, time.Since(start))
	}

	// registry verify and export of a URL are bounded the same way.
	for _, args := range [][]string{
		{"registry", "verify", dead, "--root-key", key + ".pub"},
		{"registry", "export", dead, "--root-key", key + ".pub", "--out", filepath.Join(work, "dead.tar.gz")},
	} {
		start = time.Now()
		msg := refused(t, home, args...)
		if took := time.Since(start); !strings.Contains(msg, "timeout") || took > 10*time.Second {
			t.Errorf("%s: stderr %q after %s, want a timeout within the 1s bound", args[1], msg, took)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "dead.tar.gz")); !os.IsNotExist(err) {
		t.Errorf("a failed export left its bundle: %v", err)
	}

	// A bad timeout in the file is refused, naming the field.
	cfg = strings.Replace(cfg, `"connect": "1s"`, `"connect": "soon"`, 1)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := refused(t, home, "plugin", "search"); !strings.Contains(msg, "timeouts.connect") {
		t.Errorf("bad timeout: stderr %q", msg)
	}
}
