package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/server"
)

const builtinName = "authentication-token"

// firstParty returns a registry that plays the public one: its root is the
// client's first-party root.
func firstParty(t *testing.T) *regtest.Fixture {
	f := regtest.NewRegistry(t, "public")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: builtinName, Version: "0.1.0"}))
	return f
}

// The attack: a registry added with its own root publishes a first-party
// name, marked official, at a higher version. It must never be installed,
// whatever the order, and official comes from the first-party root only.
func TestAttackFirstPartyNameTakeover(t *testing.T) {
	pub := firstParty(t)
	other := regtest.NewRegistry(t, "other")
	other.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: builtinName, Version: "9.0.0"})) // Official: true

	c := newClient(t, reg(other, other.Dir), reg(pub, pub.Dir))
	c.FirstPartyRoot = pub.RootPub
	c.Builtins = []string{builtinName}
	c.Policy.OfficialOnly = true

	// Replacing the builtin needs a say-so, from any registry.
	_, err := c.Install(context.Background(), client.Request{Name: builtinName})
	if !errors.Is(err, registry.ErrReplace) {
		t.Fatalf("install over a builtin without Replace: %v, want ErrReplace", err)
	}
	assertNothingInstalled(t, c, builtinName)

	res, err := c.Install(context.Background(), client.Request{Name: builtinName, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.Registry != "public" || res.Entry.Version != "0.1.0" {
		t.Fatalf("installed %s from %s; want 0.1.0 from the first-party registry", res.Entry.Version, res.Entry.Registry)
	}

	// Chosen explicitly, the other registry is still refused.
	c2 := newClient(t, reg(other, other.Dir), reg(pub, pub.Dir))
	c2.FirstPartyRoot, c2.Builtins = pub.RootPub, []string{builtinName}
	_, err = c2.Install(context.Background(), client.Request{Name: builtinName, Registry: "other", Replace: true})
	if !errors.Is(err, registry.ErrNotOwner) || !strings.Contains(err.Error(), "first-party") {
		t.Fatalf("install from the other registry by choice: %v, want ErrNotOwner saying first-party", err)
	}
	assertNothingInstalled(t, c2, builtinName)

	// Pinning the first-party key next to one's own (threshold 1) does not
	// make a registry first-party: the first-party root must have signed.
	sneaky := reg(other, other.Dir)
	sneaky.RootKeys = []ed25519.PublicKey{pub.RootPub, other.RootPub}
	c3 := newClient(t, sneaky)
	c3.FirstPartyRoot, c3.Builtins = pub.RootPub, []string{builtinName}
	if _, err := c3.Install(context.Background(), client.Request{Name: builtinName, Replace: true}); !errors.Is(err, registry.ErrNotOwner) {
		t.Fatalf("registry pinning the first-party key beside its own: %v, want ErrNotOwner", err)
	}
}

// The attack: a publisher of an ordinary registry sets official on its
// plugin to pass an officialOnly policy.
func TestAttackPublisherSetsOfficial(t *testing.T) {
	other := regtest.NewRegistry(t, "other")
	publishVersions(t, other, "1.0.0") // Official: true in the index
	c := newClient(t, reg(other, other.Dir))
	c.FirstPartyRoot = regtest.NewRegistry(t, "public").RootPub
	c.Policy.OfficialOnly = true
	refuse(t, c, "1.0.0", registry.ErrPolicy)
}

// The attack: a plugin installed from one registry is moved by upgrade to
// whichever registry now offers a higher version.
func TestAttackUpgradeMovesRegistry(t *testing.T) {
	a := regtest.NewRegistry(t, "a")
	b := regtest.NewRegistry(t, "b")
	publishVersions(t, a, "1.0.0")
	c := newClient(t, reg(a, a.Dir), reg(b, b.Dir))
	if _, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "^1"}); err != nil {
		t.Fatal(err)
	}
	publishVersions(t, b, "1.9.0")
	publishVersions(t, a, "1.0.1")
	res, err := c.Upgrade(context.Background(), plugin)
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || res.Entry.Registry != "a" || res.Entry.Version != "1.0.1" {
		t.Fatalf("upgrade = %+v, want 1.0.1 from a (the lock's registry)", res)
	}
	// Moving is an explicit choice.
	res, err = c.UpgradeFrom(context.Background(), plugin, "b")
	if err != nil || res.Entry.Registry != "b" || res.Entry.Version != "1.9.0" {
		t.Fatalf("upgrade --registry b = %+v, %v", res, err)
	}
	// A new install of the same name keeps the recorded choice.
	res, err = c.Install(context.Background(), client.Request{Name: plugin, Constraint: "~1.0"})
	if !errors.Is(err, registry.ErrNotFound) && (err != nil || res.Entry.Registry != "b") {
		t.Fatalf("reinstall = %+v, %v; want it to stay on b", res, err)
	}
}

// The attack: an index signed by the same root for another registry name
// (acme's staging index) is served at acme's location. It must be refused,
// and must not raise the version remembered for acme.
func TestAttackIndexOfAnotherNameSameRoot(t *testing.T) {
	acme := regtest.NewRegistry(t, "acme")
	publishVersions(t, acme, "1.0.0")
	staging := filepath.Join(t.TempDir(), "staging")
	if _, err := publish.Init(staging, "acme-staging", acme.Opts); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := publish.Resign(staging, acme.Opts); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, reg(acme, staging))
	_, err := c.Load(context.Background())
	var re *registry.Error
	if !errors.Is(err, registry.ErrSignature) || !errors.As(err, &re) || re.Field != "name" || !strings.Contains(re.Detail, "acme-staging") {
		t.Fatalf("index named acme-staging at acme's location: %v", err)
	}
	c.Registries = []client.Registry{reg(acme, acme.Dir)}
	if _, err := c.Install(context.Background(), client.Request{Name: plugin}); err != nil {
		t.Fatalf("the real acme index after the refused one: %v", err)
	}
}

// The rollback memory belongs to the registry's name and root key, not to
// a configuration entry: a client configured afresh (remove, then add)
// still refuses the old index, until an explicit reset.
func TestRollbackMemorySurvivesReconfiguration(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	old, _ := os.ReadFile(filepath.Join(f.Dir, "index.json"))
	publishVersions(t, f, "1.0.1")
	c := newClient(t, reg(f, f.Dir))
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.Dir, "index.json"), old, 0o644)
	again := newClient(t, reg(f, f.Dir))
	again.StatePath = c.StatePath
	if _, err := again.Load(context.Background()); !errors.Is(err, registry.ErrRollback) {
		t.Fatalf("old index after reconfiguring: %v, want ErrRollback", err)
	}
	st, _ := client.LoadState(c.StatePath)
	resets := st.Reset("acme", time.Now())
	if len(resets) != 1 || resets[0].Version == 0 {
		t.Fatalf("reset = %+v", resets)
	}
	st.Save(c.StatePath)
	if _, err := again.Load(context.Background()); err != nil {
		t.Fatalf("after an explicit reset: %v", err)
	}
	st, _ = client.LoadState(c.StatePath)
	if len(st.Resets) != 1 {
		t.Errorf("the reset was not recorded: %+v", st.Resets)
	}
}

// The attack: `plugin add ./BIN --allow-unsigned` silently replacing a
// signed install of the same name.
func TestAttackLocalBinaryReplacesSignedInstall(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	if _, err := c.Install(context.Background(), client.Request{Name: plugin}); err != nil {
		t.Fatal(err)
	}
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "7.0.0"})
	_, err := c.InstallLocal(context.Background(), client.LocalRequest{Path: bin, AllowUnsigned: true})
	if !errors.Is(err, registry.ErrReplace) || !strings.Contains(err.Error(), "registry acme") {
		t.Fatalf("local over signed: %v, want ErrReplace naming the registry", err)
	}
	lf, _ := lock.Load(c.LockPath)
	if e := lf.Get(plugin); e == nil || e.Source != lock.SourceRegistry || e.Version != "1.0.0" {
		t.Fatalf("lock after the refusal: %+v", e)
	}
	if _, err := c.InstallLocal(context.Background(), client.LocalRequest{Path: bin, AllowUnsigned: true, Replace: true}); err != nil {
		t.Fatalf("with Replace: %v", err)
	}
	// And back: the registry install over the local one asks too.
	if _, err := c.Install(context.Background(), client.Request{Name: plugin}); !errors.Is(err, registry.ErrReplace) {
		t.Fatalf("signed over local: %v, want ErrReplace", err)
	}
}

// The attack, second half: `plugin add ./BIN --allow-unsigned` of a
// builtin's name silently replacing the builtin.
func TestAttackLocalBinaryReplacesBuiltin(t *testing.T) {
	c := newClient(t)
	c.Builtins = []string{builtinName}
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: builtinName, Version: "9.0.0"})
	_, err := c.InstallLocal(context.Background(), client.LocalRequest{Path: bin, AllowUnsigned: true})
	if !errors.Is(err, registry.ErrReplace) || !strings.Contains(err.Error(), "builtin") || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("local over a builtin: %v, want ErrReplace naming the builtin and --replace", err)
	}
	assertNothingInstalled(t, c, builtinName)
	res, err := c.InstallLocal(context.Background(), client.LocalRequest{Path: bin, AllowUnsigned: true, Replace: true})
	if err != nil || res.Entry.Source != lock.SourceLocal {
		t.Fatalf("with Replace: %v %+v", err, res)
	}
}

// The attack: an unsigned index of hundreds of megabytes, or a signed one
// padded with spaces, was read and parsed whole before being refused.
func TestAttackOversizedIndexRefusedBeforeParsing(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	data, _ := os.ReadFile(filepath.Join(f.Dir, "index.json"))
	padded := append(bytes.Clone(data[:len(data)-1]), bytes.Repeat([]byte(" "), 33<<20)...)
	var sent int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for off := 0; off < len(padded); off += 1 << 20 {
			n, err := w.Write(padded[off:min(off+1<<20, len(padded))])
			sent += n
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, reg(f, srv.URL))
	start := time.Now()
	_, err := c.Load(context.Background())
	if !errors.Is(err, registry.ErrSize) || !strings.Contains(err.Error(), "before being parsed") {
		t.Fatalf("33 MiB index: %v, want ErrSize", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("refusing took %s", d)
	}
	// A smaller limit is honoured.
	c.MaxIndexSize = int64(len(data) - 1)
	c.Registries = []client.Registry{reg(f, f.Dir)}
	if _, err := c.Load(context.Background()); !errors.Is(err, registry.ErrSize) {
		t.Fatalf("index over MaxIndexSize: %v", err)
	}
}

// The attack: a server that trickles one byte at a time held an install
// for ten minutes.
func TestAttackSlowServerIsCutOff(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	h := server.Handler(f.Dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.json" {
			h.ServeHTTP(w, r)
			return
		}
		data, _ := os.ReadFile(filepath.Join(f.Dir, "index.json"))
		w.Header().Set("Content-Length", itoa(len(data)))
		for _, b := range data {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, reg(f, srv.URL))
	c.HTTPClient = client.NewHTTPClient(client.Timeouts{Idle: 2 * time.Second, Grace: 500 * time.Millisecond, MinRate: 1024})
	start := time.Now()
	_, err := c.Load(context.Background())
	if !errors.Is(err, client.ErrStalled) {
		t.Fatalf("trickling server: %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cut off after %s", d)
	}
	t.Log(err)

	// A server that sends headers, then nothing: the idle timeout.
	quiet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(quiet.Close)
	c.Registries = []client.Registry{reg(f, quiet.URL)}
	c.HTTPClient = client.NewHTTPClient(client.Timeouts{Idle: 500 * time.Millisecond, Grace: time.Minute})
	if _, err := c.Load(context.Background()); !errors.Is(err, client.ErrStalled) || !strings.Contains(err.Error(), "no data") {
		t.Fatalf("silent server: %v, want ErrStalled for no data", err)
	}
}

// Offline, the error names the registry that could not be read and says
// how to go on without it.
func TestUnreachableRegistryIsNamed(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	public := client.Registry{Name: "public", Location: dead, RootKeys: []ed25519.PublicKey{f.RootPub}}
	owned := reg(f, f.Dir)
	owned.Names = []string{"engine-*"}
	c := newClient(t, public, owned)
	_, err = c.Install(context.Background(), client.Request{Name: plugin})
	var re *registry.Error
	if !errors.Is(err, registry.ErrUnreachable) || !errors.As(err, &re) || re.Registry != "public" ||
		!strings.Contains(re.Hint, "--registry") || !strings.Contains(re.Hint, "registry remove public") {
		t.Fatalf("unreachable public: %v", err)
	}
	c.Only = "acme"
	if _, err := c.Install(context.Background(), client.Request{Name: plugin, Registry: "acme"}); err != nil {
		t.Fatalf("with the registry chosen: %v", err)
	}
}

var _ = index.DefaultMaxSize
