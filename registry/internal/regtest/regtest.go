// Package regtest builds real registries for the registry packages' tests:
// real ed25519 keys, a real plugin binary built with go build, and the
// publisher operations.
package regtest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/sign"
)

// Fixture is a registry directory with its root and publisher keys.
type Fixture struct {
	Dir       string
	Name      string
	Root      ed25519.PrivateKey
	RootPub   ed25519.PublicKey
	Publisher ed25519.PrivateKey
	Opts      publish.Options
}

// NewRegistry initialises a registry in a temporary directory and
// delegates every plugin name ("*") to a fresh publisher key.
func NewRegistry(t testing.TB, name string) *Fixture {
	t.Helper()
	rootPub, root, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pubPub, pubKey, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{Dir: filepath.Join(t.TempDir(), "registry"), Name: name, Root: root, RootPub: rootPub, Publisher: pubKey,
		Opts: publish.Options{RootKey: root}}
	if _, err := publish.Init(f.Dir, name, f.Opts); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.AddPublisher(f.Dir, pubPub, []string{"*"}, time.Now().Add(365*24*time.Hour), f.Opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// Publish publishes bin (built by BuildPlugin) for the running platform.
func (f *Fixture) Publish(t testing.TB, bin string) {
	t.Helper()
	if _, err := publish.Publish(context.Background(), f.Dir, publish.PublishRequest{
		Binary: bin, License: "Apache-2.0", Official: true, PublisherKey: f.Publisher,
	}, f.Opts); err != nil {
		t.Fatal(err)
	}
}

// Plugin is a build of the test plugin.
type Plugin struct{ Name, Version, Protocols string }

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[Plugin]string{}
)

// BuildPlugin go-builds registry/internal/testplugin reporting the given
// name, version and comma-separated protocol versions, and returns the
// path of the binary. Builds are shared within a test process.
func BuildPlugin(t testing.TB, p Plugin) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[p]; ok {
		return bin
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "palvella-testplugin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	if p.Protocols == "" {
		p.Protocols = "1"
	}
	bin := filepath.Join(buildDir, fmt.Sprintf("%s-%s-%s", p.Name, p.Version, p.Protocols))
	ld := fmt.Sprintf("-X main.name=%s -X main.version=%s -X main.protocols=%s", p.Name, p.Version, p.Protocols)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ld, "-o", bin, "github.com/palvella/palvella/registry/internal/testplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test plugin: %v\n%s", err, out)
	}
	built[p] = bin
	return bin
}

// Cleanup removes the shared build directory; call it from TestMain.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Mutate rewrites the registry's index through fn, bumps its version and
// re-signs it with the root key, as a registry operator (honest or not)
// could.
func (f *Fixture) Mutate(t testing.TB, fn func(ix *index.Index)) {
	t.Helper()
	p := filepath.Join(f.Dir, "index.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	fn(ix)
	ix.Version++
	if err := ix.SignRoot(f.Root); err != nil {
		t.Fatal(err)
	}
	out, err := ix.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Index reads the registry's current index.
func (f *Fixture) Index(t testing.TB) *index.Index {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.Dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}
