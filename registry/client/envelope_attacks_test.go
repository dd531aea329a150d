package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
)

func readEnvelope(t *testing.T, f *regtest.Fixture) index.Envelope {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !index.IsEnvelope(b) {
		t.Fatal("publish did not write a signed envelope")
	}
	var env index.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func writeJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Verify before parse: an envelope whose payload is not even JSON, and not
// signed by the pinned root, is refused for its signature: the payload is
// never decoded. (Before envelopes, every index was decoded whole first.)
func TestAttackEnvelopeUnsignedPayloadIsNotDecoded(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	env := readEnvelope(t, f)
	env.Payload = []byte(strings.Repeat("{[", 1<<16)) // would fail to parse, deeply
	writeJSONFile(t, filepath.Join(f.Dir, "index.json"), env)
	c := newClient(t, reg(f, f.Dir))
	_, err := c.Load(context.Background())
	if !errors.Is(err, registry.ErrSignature) || !strings.Contains(err.Error(), "altered after signing") {
		t.Fatalf("Load = %v; want a signature refusal saying the content was altered", err)
	}
}

// v1Copy writes f's index in format 1, signed by its root at a higher
// version: what an attacker holding an old-format signing path, or a
// mirror that never upgraded, would serve.
func v1Copy(t *testing.T, f *regtest.Fixture) {
	t.Helper()
	env := readEnvelope(t, f)
	ix, err := index.Parse(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	ix.Version++
	if err := ix.SignRoot(f.Root); err != nil {
		t.Fatal(err)
	}
	out, err := ix.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if index.IsEnvelope(out) {
		t.Fatal("the copy is still an envelope")
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "index.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// No downgrade: once a client accepted an envelope from a registry, a
// format 1 index from it (parsed before verification) is a rollback.
func TestAttackEnvelopeDowngradeToFormat1(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	v1Copy(t, f)
	_, err := c.Load(context.Background())
	if !errors.Is(err, registry.ErrRollback) || !strings.Contains(err.Error(), "moved to signed envelopes") {
		t.Fatalf("Load of a format 1 copy after an envelope = %v; want ErrRollback", err)
	}
	// A client that never saw the envelope still reads format 1 (the
	// public index keeps it until its next offline signing).
	if _, err := newClient(t, reg(f, f.Dir)).Load(context.Background()); err != nil {
		t.Fatalf("a new client refuses a format 1 index: %v", err)
	}
}

// The envelope's name is outside the signed bytes: changing it is refused
// as an alteration.
func TestAttackEnvelopeRenamed(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	env := readEnvelope(t, f)
	env.Name = "other"
	writeJSONFile(t, filepath.Join(f.Dir, "index.json"), env)
	_, err := newClient(t, reg(f, f.Dir)).Load(context.Background())
	if !errors.Is(err, registry.ErrSignature) {
		t.Fatalf("Load of a renamed envelope = %v; want ErrSignature", err)
	}
}
