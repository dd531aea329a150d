package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/public"
	"github.com/palvella/palvella/registry/sign"
)

func TestConfigMissingFileIsThePublicRegistry(t *testing.T) {
	cfg, err := client.LoadConfig(filepath.Join(t.TempDir(), "registries.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Registries) != 1 || cfg.Registries[0].Name != public.Name || cfg.Registries[0].Location != public.Location {
		t.Fatalf("default configuration %+v", cfg.Registries)
	}
	regs, err := cfg.ClientRegistries("")
	if err != nil {
		t.Fatal(err)
	}
	want, err := public.RootKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 1 || len(regs[0].RootKeys) != 1 || !regs[0].RootKeys[0].Equal(want) {
		t.Fatalf("the public registry is not pinned to the embedded key: %+v", regs)
	}
}

// Every bad file is refused with a message naming the field and the file.
func TestConfigRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"unknown field", `{"registries":[],"policy":{},"mirrors":[]}`, `unknown field "mirrors"`},
		{"not JSON", `{"registries":`, "fix or delete the file"},
		{"no name", `{"registries":[{"location":"/x"}]}`, "registries[0]: name must be set and unique"},
		{"no location", `{"registries":[{"name":"a"}]}`, "registries[0]: name must be set and unique, and location set"},
		{"name twice", `{"registries":[{"name":"a","location":"/x"},{"name":"a","location":"/y"}]}`, "registries[1]: name must be set and unique"},
		{"bad pattern", `{"registries":[{"name":"a","location":"/x","names":["acme-"]}]}`, `registries[0].names[0]: "acme-" is not a name pattern`},
		{"negative bound", `{"registries":[],"maxIndexBytes":-1}`, "maxIndexBytes: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "registries.json")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := client.LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("LoadConfig: %v, want %q naming %s", err, tc.want, p)
			}
		})
	}
}

func TestConfigAddRemoveSaveRoundTrip(t *testing.T) {
	pub, _, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.DefaultConfig()
	acme := client.RegistryConfig{Name: "acme", Location: "https://plugins.acme.example", RootKeys: []string{sign.EncodePublicKey(pub)}, Names: []string{"acme-*"}}
	if err := cfg.Add(acme, 0); err != nil {
		t.Fatal(err)
	}
	if cfg.Registries[0].Name != "acme" || cfg.Registries[1].Name != public.Name {
		t.Fatalf("by default a registry goes just before public: %+v", cfg.Registries)
	}
	if err := cfg.Add(client.RegistryConfig{Name: "last", Location: "/srv/last", RootKeys: acme.RootKeys}, 99); err != nil {
		t.Fatal(err)
	}
	if cfg.Registries[2].Name != "last" {
		t.Fatalf("--position past the end goes last: %+v", cfg.Registries)
	}
	err = cfg.Add(client.RegistryConfig{Name: "acme", Location: "/elsewhere"}, 0)
	if err == nil || !strings.Contains(err.Error(), "already configured (at https://plugins.acme.example)") || !strings.Contains(err.Error(), "registry remove acme") {
		t.Fatalf("adding acme twice: %v", err)
	}
	cfg.Policy.OfficialOnly = true
	cfg.MaxIndexBytes = 1 << 20

	p := filepath.Join(t.TempDir(), "home", "registries.json")
	if err := cfg.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := client.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Registries) != 3 || back.Registries[0].Names[0] != "acme-*" || !back.Policy.OfficialOnly || back.MaxIndexBytes != 1<<20 {
		t.Fatalf("round trip: %+v", back)
	}
	if !back.Policy.ResolvePolicy().OfficialOnly {
		t.Error("ResolvePolicy dropped officialOnly")
	}
	// Saved atomically: no temporary file is left beside it.
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Errorf("files beside the configuration: %v", entries)
	}

	if !back.Remove("last") || back.Remove("last") || back.Lookup("last") >= 0 {
		t.Fatal("Remove: not removed once and only once")
	}
	if err := back.Save(p); err != nil {
		t.Fatal(err)
	}
	again, err := client.LoadConfig(p)
	if err != nil || len(again.Registries) != 2 {
		t.Fatalf("after remove: %v %+v", err, again)
	}
}

func TestConfigKeysAndOnly(t *testing.T) {
	pub, _, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &client.Config{Registries: []client.RegistryConfig{
		{Name: "broken", Location: "/srv/broken", RootKeys: []string{"zz"}},
		{Name: "nokey", Location: "/srv/nokey"},
		{Name: "acme", Location: "/srv/acme", RootKeys: []string{sign.EncodePublicKey(pub)}, Threshold: 1},
	}}
	if _, err := cfg.ClientRegistries(""); err == nil || !strings.Contains(err.Error(), `registry "broken": pinned root key`) {
		t.Fatalf("a bad pinned key: %v", err)
	}
	if _, err := cfg.Registries[1].Keys(); err == nil || !strings.Contains(err.Error(), "--root-key") {
		t.Fatalf("a registry without a key: %v", err)
	}
	// Reading only acme: the bad keys of the others do not block it.
	regs, err := cfg.ClientRegistries("acme")
	if err != nil || len(regs) != 1 || regs[0].Name != "acme" || !regs[0].RootKeys[0].Equal(pub) || regs[0].Threshold != 1 {
		t.Fatalf("only acme: %v %+v", err, regs)
	}
	if _, err := cfg.ClientRegistries("nothere"); err == nil || !strings.Contains(err.Error(), `--registry "nothere"`) {
		t.Fatalf("an unknown --registry: %v", err)
	}
	if _, err := (&client.Config{}).ClientRegistries(""); err == nil || !strings.Contains(err.Error(), "registry add") {
		t.Fatalf("no registry at all: %v", err)
	}
}

func TestValidRegistryName(t *testing.T) {
	for _, ok := range []string{"acme", "a", "acme-staging_2.x", strings.Repeat("a", 64)} {
		if !client.ValidRegistryName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 65), "a b", "a/b", "ä", "a:b"} {
		if client.ValidRegistryName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
