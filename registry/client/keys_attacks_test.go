package client_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/sign"
)

// rewrite changes the registry's index through fn, bumps its version and
// signs it with signers, as whoever holds those keys could.
func rewrite(t *testing.T, f *regtest.Fixture, fn func(ix *index.Index), signers ...ed25519.PrivateKey) {
	t.Helper()
	p := filepath.Join(f.Dir, "index.json")
	ix := f.Index(t)
	fn(ix)
	ix.Version++
	if err := ix.SignRoot(signers...); err != nil {
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

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func install(t *testing.T, c *client.Client, constraint string) *client.Result {
	t.Helper()
	res, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: constraint})
	if err != nil {
		t.Fatalf("install %s@%s: %v", plugin, constraint, err)
	}
	return res
}

// A publisher key is compromised: the root revokes it. Artifacts it alone
// signed are refused (they could be the attacker's), until a new key signs
// the same bytes; the installed copy it signed is reported as revoked.
func TestAttackRevokedPublisherKey(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	oldID := sign.KeyID(f.Publisher.Public().(ed25519.PublicKey))
	srv := serve(t, f)
	before := newClient(t, reg(f, srv.URL))
	install(t, before, "1.0.0")

	if _, err := publish.RevokeKey(f.Dir, oldID, "laptop stolen", f.Opts); err != nil {
		t.Fatal(err)
	}
	err := refuse(t, newClient(t, reg(f, srv.URL)), "1.0.0", registry.ErrSignature)
	if !errors.Is(err, registry.ErrRevoked) || !strings.Contains(err.Error(), "laptop stolen") {
		t.Errorf("refusal does not say the key was revoked and why: %v", err)
	}
	// The client that installed it learns of the revocation at its next read.
	if _, err := before.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	state, err := client.LoadState(before.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := state.RevokedKeys("acme")[oldID]; !ok {
		t.Errorf("the revocation of %s is not remembered: %+v", oldID, state.RevokedKeys("acme"))
	}

	// Recovery: a new publisher key signs the same bytes; no new version.
	newPub, newPriv := newKey(t)
	if _, err := publish.AddPublisher(f.Dir, newPub, []string{"engine-*"}, time.Now().Add(time.Hour*24*90), f.Opts); err != nil {
		t.Fatal(err)
	}
	sha := f.Index(t).Lookup(plugin).Versions[0].Artifacts[0].SHA256
	_, done, err := publish.SignArtifacts(f.Dir, newPriv, "", f.Opts)
	if err != nil || len(done) != 1 {
		t.Fatalf("sign artifacts: %v %v", done, err)
	}
	if got := f.Index(t).Lookup(plugin).Versions[0].Artifacts[0].SHA256; got != sha {
		t.Fatalf("re-signing changed the artifact: %s -> %s", sha, got)
	}
	res := install(t, newClient(t, reg(f, srv.URL)), "1.0.0")
	if !slices.Equal(res.Entry.SignedBy, []string{sign.KeyID(newPub)}) {
		t.Errorf("installed as signed by %v, want only the new key", res.Entry.SignedBy)
	}
	// A revoked key is never delegated again.
	if _, err := publish.AddPublisher(f.Dir, f.Publisher.Public().(ed25519.PublicKey), []string{"*"}, time.Now().Add(time.Hour), f.Opts); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("delegating a revoked key again: %v", err)
	}
}

// A revoked publisher that may sign the index puts its old delegation (its
// root signature is still valid) back into an index without the
// revocation. A client that saw the revocation keeps refusing it.
func TestAttackRevocationDroppedByRevokedIndexSigner(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	pub, priv := newKey(t)
	if _, err := publish.Delegate(f.Dir, publish.Delegation{PublicKey: pub, Plugins: []string{"engine-*"}, Expires: time.Now().Add(90 * 24 * time.Hour), Index: true}, f.Opts); err != nil {
		t.Fatal(err)
	}
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "1.0.0"})
	if _, err := publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin, License: "MIT", PublisherKey: priv},
		publish.Options{IndexKey: priv}); err != nil {
		t.Fatal(err)
	}
	stolen := f.Index(t).Publishers
	id := sign.KeyID(pub)
	if _, err := publish.RevokeKey(f.Dir, id, "key leaked", f.Opts); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, f)
	c := newClient(t, reg(f, srv.URL))
	refuse(t, c, "1.0.0", registry.ErrSignature)

	rewrite(t, f, func(ix *index.Index) {
		ix.Revoked = nil
		ix.Publishers = stolen
	}, priv)
	_, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "1.0.0"})
	if !errors.Is(err, registry.ErrRevoked) {
		t.Fatalf("index signed by a revoked key that dropped its revocation: %v", err)
	}
	assertNothingInstalled(t, c, plugin)
}

// The root is rotated: the old root signs the new one. A client pinned to
// the old root follows the chain, link by link, and then refuses an index
// signed by the old root alone (a rollback to an older root) or a chain
// forked from the old root.
func TestRootRotationAndAttacks(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	srv := serve(t, f)
	pinnedOld := newClient(t, reg(f, srv.URL))
	install(t, pinnedOld, "1.0.0")
	oldIndex, _ := os.ReadFile(filepath.Join(f.Dir, "index.json"))

	newRootPub, newRoot := newKey(t)
	if _, err := publish.RotateRoot(f.Dir, []ed25519.PrivateKey{newRoot}, 0, f.Opts); err != nil {
		t.Fatal(err)
	}
	// The old root key can no longer sign for the registry.
	if _, err := publish.Resign(f.Dir, f.Opts); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("re-signing with the replaced root: %v", err)
	}
	newOpts := publish.Options{RootKey: newRoot}
	publishWith(t, f, newOpts, "1.1.0")

	res, err := pinnedOld.Install(context.Background(), client.Request{Name: plugin, Constraint: "1.1.0"})
	if err != nil {
		t.Fatalf("client pinned to the old root: %v", err)
	}
	if res.Entry.Version != "1.1.0" {
		t.Fatalf("installed %s", res.Entry.Version)
	}
	state, _ := client.LoadState(pinnedOld.StatePath)
	seen, _ := state.Lookup(client.StateKey(reg(f, srv.URL)))
	if seen.RootVersion != 2 || len(seen.RootKeys) != 1 || seen.RootKeys[0] != sign.EncodePublicKey(newRootPub) {
		t.Errorf("followed root not remembered: %+v", seen)
	}
	// A new client pinning the new root reads it too.
	install(t, newClient(t, client.Registry{Name: "acme", Location: srv.URL, RootKeys: []ed25519.PublicKey{newRootPub}}), "1.1.0")

	// Attack 1: whoever holds the old root signs a newer index without the
	// chain (or replays the old one with a higher version).
	ix, err := index.Parse(oldIndex)
	if err != nil {
		t.Fatal(err)
	}
	ix.Version = 1000
	if err := ix.SignRoot(f.Root); err != nil {
		t.Fatal(err)
	}
	writeIndex(t, f, ix)
	_, err = pinnedOld.Load(context.Background())
	if !errors.Is(err, registry.ErrRollback) {
		t.Errorf("index signed by the replaced root: %v", err)
	}
	// Attack 2: the old root starts another chain to a key of its own.
	evilPub, evil := newKey(t)
	_ = evilPub
	ix.RootChain = []index.RootLink{{Version: 1, Keys: []string{sign.EncodePublicKey(f.RootPub)}, Threshold: 1}}
	index.SignRootLink(f.Root, "acme", &ix.RootChain[0])
	ix.RootChain = append(ix.RootChain, index.RootLink{Version: 2, Keys: []string{sign.EncodePublicKey(evilPub)}, Threshold: 1})
	index.SignRootLink(f.Root, "acme", &ix.RootChain[1])
	index.SignRootLink(evil, "acme", &ix.RootChain[1])
	ix.Version = 1001
	if err := ix.SignRoot(evil); err != nil {
		t.Fatal(err)
	}
	writeIndex(t, f, ix)
	if _, err := pinnedOld.Load(context.Background()); !errors.Is(err, registry.ErrSignature) || !strings.Contains(err.Error(), "other keys") {
		t.Errorf("forked root chain: %v", err)
	}
	// A fresh client pinned to the old root would follow that fork: the
	// old root is exactly what it trusts. What protects it is rotating
	// before the old key is lost, and pinning the newest root.
}

// A link of the chain that the previous root did not sign is refused.
func TestAttackRootLinkNotSignedByPreviousRoot(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	evilPub, evil := newKey(t)
	rewrite(t, f, func(ix *index.Index) {
		ix.RootChain = []index.RootLink{{Version: 1, Keys: []string{sign.EncodePublicKey(f.RootPub)}, Threshold: 1}}
		index.SignRootLink(f.Root, "acme", &ix.RootChain[0])
		l := index.RootLink{Version: 2, Keys: []string{sign.EncodePublicKey(evilPub)}, Threshold: 1}
		index.SignRootLink(evil, "acme", &l)
		ix.RootChain = append(ix.RootChain, l)
	}, evil)
	err := refuse(t, newClient(t, reg(f, serve(t, f).URL)), "1.0.0", registry.ErrSignature)
	if !strings.Contains(err.Error(), "root version 2 is signed by 0 of the 1 keys of root version 1") {
		t.Errorf("message: %v", err)
	}
}

// The root delegates once (offline), with Index; the publisher then
// publishes alone. It cannot sign names outside its delegation, and a key
// delegated without Index cannot sign the index.
func TestPublisherPublishesWithRootOffline(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	pub, priv := newKey(t)
	if _, err := publish.Delegate(f.Dir, publish.Delegation{PublicKey: pub, Plugins: []string{"engine-*"}, Expires: time.Now().Add(90 * 24 * time.Hour), Index: true}, f.Opts); err != nil {
		t.Fatal(err)
	}
	alone := publish.Options{IndexKey: priv}
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "2.0.0"})
	if _, err := publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin, License: "MIT", PublisherKey: priv}, alone); err != nil {
		t.Fatal(err)
	}
	res := install(t, newClient(t, reg(f, serve(t, f).URL)), "2.0.0")
	if !slices.Equal(res.Entry.SignedBy, []string{sign.KeyID(pub)}) {
		t.Errorf("signed by %v", res.Entry.SignedBy)
	}
	v := f.Index(t).Version
	other := regtest.BuildPlugin(t, regtest.Plugin{Name: "action-other", Version: "1.0.0"})
	_, err := publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: other, License: "MIT", PublisherKey: priv}, alone)
	if !errors.Is(err, registry.ErrSignature) || !strings.Contains(err.Error(), "may only sign engine-*") {
		t.Errorf("publish outside the delegation: %v", err)
	}
	// The fixture's publisher (delegated "*" without Index) may sign the
	// artifact but not the index.
	_, err = publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: other, License: "MIT", PublisherKey: f.Publisher},
		publish.Options{IndexKey: f.Publisher})
	if !errors.Is(err, registry.ErrSignature) || !strings.Contains(err.Error(), "not the index") {
		t.Errorf("publish by a key not delegated to sign the index: %v", err)
	}
	if f.Index(t).Version != v {
		t.Error("a refused publish changed the index")
	}
	// And clients refuse an index signed by such a key.
	rewrite(t, f, func(*index.Index) {}, f.Publisher)
	refuse(t, newClient(t, reg(f, serve(t, f).URL)), "2.0.0", registry.ErrSignature)
}

func publishWith(t *testing.T, f *regtest.Fixture, o publish.Options, v string) {
	t.Helper()
	bin := regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: v})
	if _, err := publish.Publish(context.Background(), f.Dir, publish.PublishRequest{Binary: bin, License: "Apache-2.0", PublisherKey: f.Publisher}, o); err != nil {
		t.Fatal(err)
	}
}

func writeIndex(t *testing.T, f *regtest.Fixture, ix *index.Index) {
	t.Helper()
	out, err := ix.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "index.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}
