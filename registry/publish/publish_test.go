package publish_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/manifest"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/server"
	"github.com/palvella/palvella/registry/sign"
)

func TestMain(m *testing.M) {
	code := m.Run()
	regtest.Cleanup()
	os.Exit(code)
}

func opts(f *regtest.Fixture) publish.VerifyOptions {
	return publish.VerifyOptions{RootKeys: []ed25519.PublicKey{f.RootPub}}
}

func TestPublishLayoutAndVersionBumps(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	v0 := f.Index(t).Version
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0", Protocols: "1,2"})
	f.Publish(t, bin)
	ix := f.Index(t)
	if ix.Version != v0+1 {
		t.Errorf("version %d after publish, want %d", ix.Version, v0+1)
	}
	p := ix.Lookup("engine-test")
	if p == nil || p.Categories[0] != "engine" || p.License != "Apache-2.0" || p.Description != "test plugin" {
		t.Fatalf("plugin entry %+v", p)
	}
	a := p.Versions[0].Artifacts[0]
	want := "artifacts/engine-test/1.0.0/engine-test_" + runtime.GOOS + "_" + runtime.GOARCH
	if a.URL != want {
		t.Errorf("url %s, want %s", a.URL, want)
	}
	orig, _ := os.ReadFile(bin)
	copied, err := os.ReadFile(filepath.Join(f.Dir, want))
	if err != nil || !bytes.Equal(orig, copied) || int64(len(orig)) != a.Size {
		t.Errorf("artifact not copied faithfully: %v", err)
	}
	if len(p.Versions[0].ProtocolVersions) != 2 {
		t.Errorf("protocol versions %v", p.Versions[0].ProtocolVersions)
	}

	// Published artifacts never change.
	_, err = publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin, PublisherKey: f.Publisher}, f.Opts)
	if !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("republish: %v", err)
	}
	// Name and version must match what the binary says.
	_, err = publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin, Version: "9.9.9", PublisherKey: f.Publisher}, f.Opts)
	if !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("mismatched version: %v", err)
	}
	// An undelegated publisher key is refused.
	_, rogue, _ := sign.Generate()
	bin2 := regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.1"})
	_, err = publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin2, PublisherKey: rogue}, f.Opts)
	if !errors.Is(err, registry.ErrSignature) {
		t.Errorf("undelegated publisher: %v", err)
	}
	if f.Index(t).Version != v0+1 {
		t.Error("a refused publish changed the index")
	}
}

func TestPublishForOtherPlatformNeedsManifest(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"})
	req := publish.PublishRequest{Binary: bin, OS: "plan9", Arch: "386", License: "MIT", PublisherKey: f.Publisher}
	if _, err := publish.Publish(context.Background(), f.Dir, req, f.Opts); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Fatalf("cross publish without manifest: %v", err)
	}
	req.Manifest = &manifest.Manifest{Name: "engine-test", Version: "1.0.0", Categories: []string{"engine"}, ProtocolVersions: []int{1}}
	if _, err := publish.Publish(context.Background(), f.Dir, req, f.Opts); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesToResignTamperedIndex(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	p := filepath.Join(f.Dir, "index.json")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`"acme"`), []byte(`"evil"`), 1), 0o644)
	if _, err := publish.Resign(f.Dir, f.Opts); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("re-signed a tampered index: %v", err)
	}
}

func TestResignRefreshesExpiry(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	later := time.Now().Add(29 * 24 * time.Hour)
	o := f.Opts
	o.Now = func() time.Time { return later }
	ix, err := publish.Resign(f.Dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if !ix.ExpiresAt().After(later.Add(29 * 24 * time.Hour)) {
		t.Errorf("expiry %s not refreshed", ix.Expires)
	}
}

func TestVerifyRegistry(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.1.0"}))
	ctx := context.Background()
	srv := httptest.NewServer(server.Handler(f.Dir))
	defer srv.Close()
	for _, loc := range []string{f.Dir, filepath.Join(f.Dir, "index.json"), srv.URL, srv.URL + "/index.json"} {
		rep, err := publish.Verify(ctx, loc, opts(f))
		if err != nil {
			t.Fatalf("verify %s: %v", loc, err)
		}
		if rep.Artifacts != 2 || rep.Plugins != 1 || rep.Registry != "acme" {
			t.Errorf("report %+v", rep)
		}
	}
	ix := f.Index(t)
	art := filepath.Join(f.Dir, ix.Plugins[0].Versions[1].Artifacts[0].URL)
	b, _ := os.ReadFile(art)
	b[0] ^= 1
	os.WriteFile(art, b, 0o644)
	rep, err := publish.Verify(ctx, srv.URL, opts(f))
	if !errors.Is(err, registry.ErrChecksum) || len(rep.Problems) != 1 {
		t.Errorf("verify with a corrupt artifact: %v %+v", err, rep)
	}
	other, _, _ := sign.Generate()
	if _, err := publish.Verify(ctx, f.Dir, publish.VerifyOptions{RootKeys: []ed25519.PublicKey{other}}); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("verify against the wrong root: %v", err)
	}
}

func TestBundleMirrorsAbsoluteURLs(t *testing.T) {
	// A registry whose index points at artifacts on another host.
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	cdn := httptest.NewServer(http.FileServer(http.Dir(f.Dir))) // a plain static host
	defer cdn.Close()
	f.Mutate(t, func(ix *index.Index) {
		a := &ix.Plugins[0].Versions[0].Artifacts[0]
		a.URL = cdn.URL + "/" + a.URL
	})
	ctx := context.Background()
	var buf bytes.Buffer
	if _, err := publish.ExportBundle(ctx, f.Dir, &buf, opts(f)); err != nil {
		t.Fatal(err)
	}
	cdn.Close() // air gap
	dest := filepath.Join(t.TempDir(), "imported")
	if _, err := publish.ImportBundle(ctx, &buf, dest, opts(f)); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	c := &client.Client{
		Registries: []client.Registry{{Name: "acme", Location: dest, RootKeys: []ed25519.PublicKey{f.RootPub}}},
		PluginDir:  filepath.Join(home, "plugins"), LockPath: filepath.Join(home, "lock"), StatePath: filepath.Join(home, "state"),
		Protocols: []int{1},
	}
	if _, err := c.Install(ctx, client.Request{Name: "engine-test", Constraint: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
}

// The attack: a bundle that carries files its index does not reference (a
// script, a key) left them in the imported folder, ready to be served.
func TestImportKeepsOnlyReferencedFiles(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	os.WriteFile(filepath.Join(f.Dir, "artifacts", "root.key"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(f.Dir, "install.sh"), []byte("#!/bin/sh\n"), 0o755)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	filepath.WalkDir(f.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(f.Dir, p)
		data, _ := os.ReadFile(p)
		tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
		return nil
	})
	tw.Close()
	gz.Close()
	dest := filepath.Join(t.TempDir(), "imported")
	if _, err := publish.ImportBundle(context.Background(), &buf, dest, opts(f)); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dest, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{"artifacts/engine-test/1.0.0/engine-test_" + runtime.GOOS + "_" + runtime.GOARCH, "index.json"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("imported files %v, want only %v", got, want)
	}
}

func TestImportRefusesBadBundle(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	var buf bytes.Buffer
	if _, err := publish.ExportBundle(context.Background(), f.Dir, &buf, opts(f)); err != nil {
		t.Fatal(err)
	}
	other, _, _ := sign.Generate()
	dest := filepath.Join(t.TempDir(), "imported")
	if _, err := publish.ImportBundle(context.Background(), bytes.NewReader(buf.Bytes()), dest, publish.VerifyOptions{RootKeys: []ed25519.PublicKey{other}}); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("import with wrong root: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Error("refused bundle left a folder behind")
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 0 {
		t.Errorf("refused import left %d entries", len(entries))
	}
}

func TestYank(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	if _, err := publish.Yank(f.Dir, "engine-test", "1.0.0", "", f.Opts); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("yank without reason: %v", err)
	}
	if _, err := publish.Yank(f.Dir, "engine-test", "2.0.0", "x", f.Opts); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("yank unknown version: %v", err)
	}
	ix, err := publish.Yank(f.Dir, "engine-test", "1.0.0", "CVE-2026-0001", f.Opts)
	if err != nil {
		t.Fatal(err)
	}
	if y := ix.Lookup("engine-test").Versions[0].Yanked; y == nil || y.Reason != "CVE-2026-0001" {
		t.Errorf("yanked = %+v", y)
	}
	if _, err := publish.Verify(context.Background(), f.Dir, opts(f)); err != nil {
		t.Errorf("yanking broke the signatures: %v", err)
	}
}

func TestCoSignedIndexMeetsThreshold(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	second, secondKey, _ := sign.Generate()
	vo := publish.VerifyOptions{RootKeys: []ed25519.PublicKey{f.RootPub, second}}
	home := t.TempDir()
	c := &client.Client{
		Registries: []client.Registry{{Name: "acme", Location: f.Dir, RootKeys: vo.RootKeys, Threshold: 2}},
		PluginDir:  filepath.Join(home, "plugins"), LockPath: filepath.Join(home, "lock"), StatePath: filepath.Join(home, "state"),
	}
	if _, err := c.Load(context.Background()); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("one signature met a threshold of two: %v", err)
	}
	o := f.Opts
	o.CoSigners = []ed25519.PrivateKey{secondKey}
	if _, err := publish.Resign(f.Dir, o); err != nil {
		t.Fatal(err)
	}
	// The delegation is signed by the first root only, so its key is not trusted yet.
	if _, _, err := c.Resolve(context.Background(), client.Request{Name: "engine-test"}); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("delegation below threshold accepted: %v", err)
	}
	ix := f.Index(t)
	pub, _ := sign.ParsePublicKey(ix.Publishers[0].PublicKey)
	if _, err := publish.AddPublisher(f.Dir, pub, []string{"*"}, time.Now().Add(time.Hour), o); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatalf("co-signed index: %v", err)
	}
	if sel, _, err := c.Resolve(context.Background(), client.Request{Name: "engine-test"}); err != nil || sel.Version.Version != "1.0.0" {
		t.Fatalf("resolve under a co-signed delegation: %v", err)
	}
}
