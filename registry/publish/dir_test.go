package publish_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/sign"
)

// A small registry has one key: the root publishes itself. Asked to, the
// first publish delegates every name to it; a second one does not
// delegate again; the index still verifies against the root alone.
func TestRootPublishesWithSelfDelegation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	rootPub, root, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	o := publish.Options{RootKey: root}
	if _, err := publish.Init(dir, "solo", o); err != nil {
		t.Fatal(err)
	}
	if !publish.IsRoot(dir, rootPub) {
		t.Fatal("IsRoot: the key that signed the index is not its root")
	}
	otherPub, _, _ := sign.Generate()
	if publish.IsRoot(dir, otherPub) || publish.IsRoot(filepath.Join(dir, "missing"), rootPub) {
		t.Fatal("IsRoot: another key, or a missing registry, counts as root")
	}

	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-solo", Version: "1.0.0"})
	req := publish.PublishRequest{Binary: bin, License: "MIT", PublisherKey: root}
	// Without RootDelegation the root is not a publisher of anything.
	if _, err := publish.Publish(context.Background(), dir, req, o); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("root publishing without a delegation: %v, want ErrSignature", err)
	}
	req.RootDelegation = 48 * time.Hour // shorter than the index: the index's validity wins
	ix, err := publish.Publish(context.Background(), dir, req, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Publishers) != 1 || ix.Publishers[0].KeyID != sign.KeyID(rootPub) || ix.Publishers[0].Plugins[0] != "*" {
		t.Fatalf("publishers after a self-delegating publish: %+v", ix.Publishers)
	}
	exp, _ := time.Parse(time.RFC3339, ix.Publishers[0].Expires)
	if exp.Before(ix.ExpiresAt().Add(-time.Hour)) {
		t.Errorf("self-delegation expires %s, before the index (%s)", exp, ix.Expires)
	}
	v := ix.Version
	req.Binary = regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-solo", Version: "1.0.1"})
	ix, err = publish.Publish(context.Background(), dir, req, o)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Version != v+1 {
		t.Errorf("second publish moved the index from %d to %d: delegated again", v, ix.Version)
	}
	if _, err := publish.Verify(context.Background(), dir, publish.VerifyOptions{RootKeys: []ed25519.PublicKey{rootPub}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// --base-url: the index points at the artifact hosted elsewhere; the
// artifact's signature still holds, the index is re-signed, and FindArtifact
// finds what was published.
func TestPublishPointsArtifactAtBaseURL(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"})
	req := publish.PublishRequest{Binary: bin, License: "MIT", PublisherKey: f.Publisher, BaseURL: "https://downloads.example/v1.0.0/"}
	ix, err := publish.Publish(context.Background(), f.Dir, req, f.Opts)
	if err != nil {
		t.Fatal(err)
	}
	a := publish.FindArtifact(ix, publish.PublishRequest{Name: "engine-test", Version: "1.0.0"})
	want := "https://downloads.example/v1.0.0/engine-test_" + runtime.GOOS + "_" + runtime.GOARCH
	if a == nil || a.URL != want {
		t.Fatalf("artifact %+v, want URL %s", a, want)
	}
	// The copy stays in the folder; the index on disk says the same as the
	// one returned and verifies against the root (signatures only: the
	// host does not exist).
	if _, err := os.Stat(filepath.Join(f.Dir, "artifacts", "engine-test", "1.0.0")); err != nil {
		t.Errorf("the copy in the folder is gone: %v", err)
	}
	if got := publish.FindArtifact(f.Index(t), publish.PublishRequest{Name: "engine-test", Version: "1.0.0"}); got == nil || got.URL != want {
		t.Errorf("index on disk: %+v", got)
	}
	rep, err := publish.Verify(context.Background(), f.Dir, publish.VerifyOptions{RootKeys: []ed25519.PublicKey{f.RootPub}, SkipDownload: true})
	if err != nil || rep.Artifacts != 1 {
		t.Fatalf("verify without download: %v %+v", err, rep)
	}
	if publish.FindArtifact(ix, publish.PublishRequest{Name: "engine-test", Version: "1.0.0", OS: "plan9"}) != nil ||
		publish.FindArtifact(ix, publish.PublishRequest{Name: "engine-none", Version: "1.0.0"}) != nil {
		t.Error("FindArtifact found an artifact that was never published")
	}

	// A base URL that is not http(s) is refused before anything is written.
	v := f.Index(t).Version
	req = publish.PublishRequest{Binary: regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.1"}),
		PublisherKey: f.Publisher, BaseURL: "file:///etc"}
	_, err = publish.Publish(context.Background(), f.Dir, req, f.Opts)
	var re *registry.Error
	if !errors.As(err, &re) || re.Field != "baseURL" {
		t.Fatalf("file:// base URL: %v, want a refusal naming baseURL", err)
	}
	if f.Index(t).Version != v {
		t.Error("a refused publish changed the index")
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "artifacts", "engine-test", "1.0.1")); !os.IsNotExist(err) {
		t.Errorf("a refused publish copied the artifact: %v", err)
	}
}

// verify --no-download checks every artifact's signature without reading
// the artifact: a deleted artifact passes, a signature by a key outside
// its delegation does not.
func TestVerifySkipDownload(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	ix := f.Index(t)
	os.Remove(filepath.Join(f.Dir, ix.Plugins[0].Versions[0].Artifacts[0].URL))
	vo := publish.VerifyOptions{RootKeys: []ed25519.PublicKey{f.RootPub}, SkipDownload: true}
	if rep, err := publish.Verify(context.Background(), f.Dir, vo); err != nil || rep.Artifacts != 1 || len(rep.Problems) != 0 {
		t.Fatalf("no-download verify of a registry whose artifact is elsewhere: %v %+v", err, rep)
	}
	vo.SkipDownload = false
	if _, err := publish.Verify(context.Background(), f.Dir, vo); err == nil {
		t.Fatal("verify with download passed without the artifact")
	}
	// The artifact signed again by a key the root never delegated.
	_, rogue, _ := sign.Generate()
	f.Mutate(t, func(ix *index.Index) {
		v := &ix.Plugins[0].Versions[0]
		v.Artifacts[0].Signatures = nil
		if err := index.SignArtifact(rogue, "engine-test", v, &v.Artifacts[0]); err != nil {
			t.Fatal(err)
		}
	})
	vo.SkipDownload = true
	rep, err := publish.Verify(context.Background(), f.Dir, vo)
	if !errors.Is(err, registry.ErrSignature) || rep == nil || len(rep.Problems) != 1 {
		t.Fatalf("no-download verify of an undelegated signature: %v %+v", err, rep)
	}
}

// An export that fails leaves nothing at the bundle's path; one that
// succeeds leaves exactly the bundle.
func TestExportBundleFileIsAtomic(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-test", Version: "1.0.0"}))
	outDir := t.TempDir()
	out := filepath.Join(outDir, "acme.tar.gz")
	other, _, _ := sign.Generate()
	if _, err := publish.ExportBundleFile(context.Background(), f.Dir, out, publish.VerifyOptions{RootKeys: []ed25519.PublicKey{other}}); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("export against the wrong root: %v", err)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
		t.Fatalf("a failed export left %v", entries)
	}
	rep, err := publish.ExportBundleFile(context.Background(), f.Dir, out, opts(f))
	if err != nil || rep.Artifacts != 1 {
		t.Fatalf("export: %v %+v", err, rep)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 1 || entries[0].Name() != "acme.tar.gz" {
		t.Fatalf("after export: %v", entries)
	}
	bundle, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bundle.Close()
	if _, err := publish.ImportBundle(context.Background(), bundle, filepath.Join(t.TempDir(), "imported"), opts(f)); err != nil {
		t.Fatalf("the exported bundle does not import: %v", err)
	}
}

// ReadIndex says how to create a registry that is not there.
func TestReadIndexOfMissingRegistry(t *testing.T) {
	_, err := publish.ReadIndex(filepath.Join(t.TempDir(), "nothing"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "palvella registry init") {
		t.Fatalf("ReadIndex of a missing folder: %v", err)
	}
	f := regtest.NewRegistry(t, "acme")
	ix, err := publish.ReadIndex(f.Dir)
	if err != nil || ix.Name != "acme" || !ix.IsEnvelope() {
		t.Fatalf("ReadIndex: %v %+v", err, ix)
	}
}
