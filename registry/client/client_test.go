package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/server"
)

func TestMain(m *testing.M) {
	code := m.Run()
	regtest.Cleanup()
	os.Exit(code)
}

const plugin = "engine-test"

func newClient(t *testing.T, regs ...client.Registry) *client.Client {
	t.Helper()
	home := t.TempDir()
	return &client.Client{
		Registries: regs,
		PluginDir:  filepath.Join(home, "plugins"),
		LockPath:   filepath.Join(home, "plugins.lock"),
		StatePath:  filepath.Join(home, "registries.json"),
		Protocols:  []int{1},
	}
}

func serve(t *testing.T, f *regtest.Fixture) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(server.Handler(f.Dir))
	t.Cleanup(srv.Close)
	return srv
}

func reg(f *regtest.Fixture, location string) client.Registry {
	return client.Registry{Name: f.Name, Location: location, RootKeys: []ed25519.PublicKey{f.RootPub}}
}

func publishVersions(t *testing.T, f *regtest.Fixture, versions ...string) {
	t.Helper()
	for _, v := range versions {
		f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: v}))
	}
}

// assertNothingInstalled checks the plugin directory holds neither the
// plugin nor leftovers, and the lock does not list it.
func assertNothingInstalled(t *testing.T, c *client.Client, name string) {
	t.Helper()
	entries, err := os.ReadDir(c.PluginDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("plugin directory holds %q after a refused install", e.Name())
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	if lf.Get(name) != nil {
		t.Errorf("lock lists %s after a refused install", name)
	}
}

func describeVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--describe").Output()
	if err != nil {
		t.Fatalf("run installed plugin: %v", err)
	}
	var m struct{ Version string }
	if err := jsonUnmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m.Version
}

func TestEndToEndOverHTTP(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0", "1.0.1", "1.1.0", "2.0.0-rc.1")
	srv := serve(t, f)
	c := newClient(t, reg(f, srv.URL))
	ctx := context.Background()

	for constraint, want := range map[string]string{
		"~1.0":         "1.0.1",
		"^1":           "1.1.0",
		">=2.0.0-rc.0": "2.0.0-rc.1",
		">=1.0 <2.0":   "1.1.0",
		"1.0.0":        "1.0.0",
		"":             "1.1.0", // prereleases only when the constraint names one
	} {
		sel, _, err := c.Resolve(ctx, client.Request{Name: plugin, Constraint: constraint})
		if err != nil {
			t.Fatalf("resolve %q: %v", constraint, err)
		}
		if sel.Version.Version != want || sel.Registry != "acme" {
			t.Errorf("resolve %q = %s from %s, want %s from acme", constraint, sel.Version.Version, sel.Registry, want)
		}
	}

	var progress []client.Progress
	c.OnProgress = func(p client.Progress) { progress = append(progress, p) }
	res, err := c.Install(ctx, client.Request{Name: plugin, Constraint: "~1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.Version != "1.0.1" || res.Entry.Registry != "acme" || res.Entry.Source != lock.SourceRegistry {
		t.Fatalf("installed %+v", res.Entry)
	}
	if len(progress) == 0 || progress[len(progress)-1].Done != progress[len(progress)-1].Total {
		t.Errorf("progress did not reach the total: %+v", progress)
	}
	st, err := os.Stat(res.Entry.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("installed mode %v, want 0755", st.Mode().Perm())
	}
	if got := describeVersion(t, res.Entry.Path); got != "1.0.1" {
		t.Errorf("installed binary reports %s", got)
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	e := lf.Get(plugin)
	if e == nil || e.Constraint != "~1.0" || len(e.Artifacts) != 1 || e.SHA256 != e.Artifacts[client.PlatformKey(c)] || len(e.SignedBy) != 1 {
		t.Fatalf("lock entry %+v", e)
	}
	if e.Categories[0] != "engine" || e.ProtocolVersions[0] != 1 {
		t.Errorf("lock entry lacks manifest data: %+v", e)
	}
	if _, err := c.Verify(); err != nil {
		t.Fatalf("verify fresh install: %v", err)
	}

	// Upgrade stays within the recorded constraint ~1.0.
	if res, err := c.Upgrade(ctx, plugin); err != nil || res != nil {
		t.Fatalf("upgrade with nothing newer = %+v, %v", res, err)
	}
	publishVersions(t, f, "1.0.2")
	up, err := c.Upgrade(ctx, plugin)
	if err != nil {
		t.Fatal(err)
	}
	if up == nil || up.Entry.Version != "1.0.2" || up.Previous != "1.0.1" {
		t.Fatalf("upgrade = %+v", up)
	}
	if _, err := os.Stat(filepath.Join(c.PluginDir, plugin, "1.0.1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old version still on disk: %v", err)
	}
	if got := describeVersion(t, up.Entry.Path); got != "1.0.2" {
		t.Errorf("upgraded binary reports %s", got)
	}

	if err := c.Remove(ctx, plugin); err != nil {
		t.Fatal(err)
	}
	assertNothingInstalled(t, c, plugin)
	if err := c.Remove(ctx, plugin); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}

func TestFolderRegistryAndBundleWithoutHTTP(t *testing.T) {
	f := regtest.NewRegistry(t, "local")
	publishVersions(t, f, "1.0.0", "1.1.0")
	ctx := context.Background()

	c := newClient(t, reg(f, f.Dir))
	res, err := c.Install(ctx, client.Request{Name: plugin, Constraint: "^1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.Version != "1.1.0" {
		t.Fatalf("folder install got %s", res.Entry.Version)
	}

	// The index file itself works as a location (like registry.json).
	c2 := newClient(t, reg(f, filepath.Join(f.Dir, "index.json")))
	if sel, _, err := c2.Resolve(ctx, client.Request{Name: plugin, Constraint: "~1.0"}); err != nil || sel.Version.Version != "1.0.0" {
		t.Fatalf("index-file resolve = %v, %v", sel, err)
	}

	var bundle bytes.Buffer
	vo := publish.VerifyOptions{RootKeys: []ed25519.PublicKey{f.RootPub}}
	if _, err := publish.ExportBundle(ctx, f.Dir, &bundle, vo); err != nil {
		t.Fatal(err)
	}
	imported := filepath.Join(t.TempDir(), "mirror")
	rep, err := publish.ImportBundle(ctx, bytes.NewReader(bundle.Bytes()), imported, vo)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Artifacts != 2 {
		t.Errorf("import report %+v", rep)
	}
	if err := os.RemoveAll(f.Dir); err != nil { // the original is gone: only the bundle remains
		t.Fatal(err)
	}
	c3 := newClient(t, reg(f, imported))
	res, err = c3.Install(ctx, client.Request{Name: plugin, Constraint: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := describeVersion(t, res.Entry.Path); got != "1.0.0" {
		t.Errorf("bundle install reports %s", got)
	}
}

func TestOrderDoesNotDecideOwnership(t *testing.T) {
	private := regtest.NewRegistry(t, "private")
	public := regtest.NewRegistry(t, "public")
	publishVersions(t, private, "1.0.0")
	publishVersions(t, public, "1.1.0")
	for _, order := range [][]client.Registry{
		{reg(private, private.Dir), reg(public, public.Dir)},
		{reg(public, public.Dir), reg(private, private.Dir)},
	} {
		c := newClient(t, order...)
		// Both are open and list the name: neither wins by position.
		if _, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "^1"}); !errors.Is(err, registry.ErrAmbiguous) {
			t.Fatalf("order %s first: got %v, want ErrAmbiguous", order[0].Name, err)
		}
		assertNothingInstalled(t, c, plugin)
	}
	// Added for the name, the private registry owns it in any order.
	owned := reg(private, private.Dir)
	owned.Names = []string{"engine-*"}
	c := newClient(t, reg(public, public.Dir), owned)
	sel, _, err := c.Resolve(context.Background(), client.Request{Name: plugin, Constraint: "^1"})
	if err != nil || sel.Registry != "private" || sel.Version.Version != "1.0.0" {
		t.Fatalf("got %v, %v; want 1.0.0 from private", sel, err)
	}
}

func TestInstallLocal(t *testing.T) {
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: "action-local", Version: "0.3.0", Protocols: "1,2"})
	c := newClient(t)
	ctx := context.Background()
	if _, err := c.InstallLocal(ctx, client.LocalRequest{Path: bin}); !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("local install without allow-unsigned: %v", err)
	}
	assertNothingInstalled(t, c, "action-local")
	res, err := c.InstallLocal(ctx, client.LocalRequest{Path: bin, AllowUnsigned: true})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Entry
	if e.Source != lock.SourceLocal || e.Name != "action-local" || e.Version != "0.3.0" || len(e.ProtocolVersions) != 2 {
		t.Fatalf("entry %+v", e)
	}
	sum := sha256File(t, bin)
	if e.SHA256 != sum {
		t.Errorf("lock sha256 %s, file %s", e.SHA256, sum)
	}
	if _, err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyReportsEditedBinary(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	res, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(res.Entry.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("#")
	fh.Close()
	checks, err := c.Verify()
	if !errors.Is(err, registry.ErrChecksum) {
		t.Fatalf("verify after edit: %v", err)
	}
	if len(checks) != 1 || !errors.Is(checks[0].Err, registry.ErrChecksum) || checks[0].Name != plugin {
		t.Errorf("checks %+v", checks)
	}
	os.Remove(res.Entry.Path)
	if _, err := c.Verify(); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("verify after delete: %v", err)
	}
}

func TestStateRefusesSameVersionOtherContent(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Re-sign different content under the same version number.
	f.Mutate(t, func(ix *index.Index) { ix.Version--; ix.Plugins[0].Description = "changed" })
	if _, err := c.Load(context.Background()); !errors.Is(err, registry.ErrRollback) {
		t.Fatalf("same version, other content: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	c := newClient(t)
	if _, err := c.Load(context.Background()); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("no registries: %v", err)
	}
	f := regtest.NewRegistry(t, "acme")
	c = newClient(t, client.Registry{Name: "acme", Location: f.Dir})
	_, err := c.Load(context.Background())
	if !errors.Is(err, registry.ErrSignature) || !strings.Contains(err.Error(), "root public key") {
		t.Errorf("no pinned root: %v", err)
	}
	// Without a pinned root nothing can be verified; only an explicit
	// allow-unsigned policy accepts that.
	publishVersions(t, f, "1.0.0")
	if _, err := c.Install(context.Background(), client.Request{Name: plugin}); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("install without pinned root: %v", err)
	}
	assertNothingInstalled(t, c, plugin)
	c.Policy.AllowUnsigned = true
	if _, err := c.Install(context.Background(), client.Request{Name: plugin}); err != nil {
		t.Errorf("no pinned root but unsigned allowed: %v", err)
	}
}

// a handler that serves the registry but lets a test replace artifacts.
func tamperingServer(t *testing.T, f *regtest.Fixture, artifact func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	h := server.Handler(f.Dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/artifacts/") && artifact(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}
