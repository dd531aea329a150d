package index_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/sign"
)

// build returns a signed index with one plugin and one artifact, plus the
// root public key.
func build(t testing.TB) (*index.Index, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	// Fixed keys and times: fuzzing needs the same seed corpus in every process.
	root := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	rootPub, pubPub := root.Public().(ed25519.PublicKey), pub.Public().(ed25519.PublicKey)
	ix := &index.Index{
		FormatVersion: 1, Name: "acme", Version: 7,
		Expires: "2100-01-01T00:00:00Z",
		Publishers: []index.Publisher{{KeyID: sign.KeyID(pubPub), PublicKey: sign.EncodePublicKey(pubPub),
			Plugins: []string{"engine-*"}, Expires: "2100-01-01T00:00:00Z"}},
		Plugins: []index.Plugin{{Name: "engine-docker", Categories: []string{"engine"}, License: "Apache-2.0",
			Description: `runs "jobs" <in> containers & more`,
			Versions: []index.Version{{Version: "1.2.3", ProtocolVersions: []int{1}, Artifacts: []index.Artifact{{
				OS: "linux", Arch: "amd64", URL: "artifacts/engine-docker/1.2.3/engine-docker_linux_amd64", Size: 42,
				SHA256: strings.Repeat("ab", 32)}}}}}},
	}
	if err := index.SignDelegation(root, ix.Name, &ix.Publishers[0]); err != nil {
		t.Fatal(err)
	}
	v := &ix.Plugins[0].Versions[0]
	if err := index.SignArtifact(pub, "engine-docker", v, &v.Artifacts[0]); err != nil {
		t.Fatal(err)
	}
	if err := ix.SignRoot(root); err != nil {
		t.Fatal(err)
	}
	return ix, rootPub, pub
}

func marshal(t testing.TB, ix *index.Index) []byte {
	t.Helper()
	b, err := ix.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripAndVerify(t *testing.T) {
	ix, root, _ := build(t)
	parsed, err := index.Parse(marshal(t, ix))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := parsed.Lookup("engine-docker")
	v := &p.Versions[0]
	if ids, err := trust.VerifyArtifact(p.Name, v, &v.Artifacts[0], time.Now()); err != nil || len(ids) != 1 {
		t.Fatalf("artifact: %v %v", ids, err)
	}
}

func TestSignatureSurvivesReformatting(t *testing.T) {
	ix, root, _ := build(t)
	// Re-encode with other key order and whitespace: the canonical form,
	// and so the signature, must not change.
	var tree map[string]any
	json.Unmarshal(marshal(t, ix), &tree)
	compact, _ := json.Marshal(tree) // sorted keys, no indentation
	parsed, err := index.Parse(compact)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}}, time.Now()); err != nil {
		t.Fatalf("reformatted index no longer verifies: %v", err)
	}
}

func TestTamperingBreaksRootSignature(t *testing.T) {
	ix, root, _ := build(t)
	for _, edit := range []struct{ old, new string }{
		{`"Apache-2.0"`, `"MIT"`},
		{`"version": 7`, `"version": 8`},
		{`"size": 42`, `"size": 43`},
		{`"official"`, `"official"`}, // no-op control is below
	} {
		b := marshal(t, ix)
		nb := bytes.Replace(b, []byte(edit.old), []byte(edit.new), 1)
		if bytes.Equal(b, nb) {
			continue
		}
		parsed, err := index.Parse(nb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}}, time.Now()); !errors.Is(err, registry.ErrSignature) {
			t.Errorf("edit %s -> %s: %v", edit.old, edit.new, err)
		}
	}
	other, _, _ := sign.Generate()
	parsed, _ := index.Parse(marshal(t, ix))
	if _, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{other}}, time.Now()); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("verified against an unrelated root: %v", err)
	}
	if _, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}, Threshold: 2}, time.Now()); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("threshold 2 met by one key: %v", err)
	}
	if _, err := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}}, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, registry.ErrExpired) {
		t.Errorf("expired index: %v", err)
	}
}

func TestArtifactSignatureBinding(t *testing.T) {
	ix, root, _ := build(t)
	parsed, _ := index.Parse(marshal(t, ix))
	trust, _ := parsed.Verify(index.Roots{Keys: []ed25519.PublicKey{root}}, time.Now())
	p := parsed.Lookup("engine-docker")
	for name, mutate := range map[string]func(v *index.Version, a *index.Artifact){
		"version":  func(v *index.Version, a *index.Artifact) { v.Version = "1.2.4" },
		"platform": func(v *index.Version, a *index.Artifact) { a.Arch = "arm64" },
		"sha256":   func(v *index.Version, a *index.Artifact) { a.SHA256 = strings.Repeat("cd", 32) },
		"size":     func(v *index.Version, a *index.Artifact) { a.Size++ },
		"protocol": func(v *index.Version, a *index.Artifact) { v.ProtocolVersions = []int{1, 2} },
	} {
		v := p.Versions[0]
		a := v.Artifacts[0]
		mutate(&v, &a)
		if _, err := trust.VerifyArtifact(p.Name, &v, &a, time.Now()); !errors.Is(err, registry.ErrSignature) {
			t.Errorf("changed %s, signature still accepted: %v", name, err)
		}
	}
	v := p.Versions[0]
	if _, err := trust.VerifyArtifact("engine-other", &v, &v.Artifacts[0], time.Now()); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("signature reused for another plugin: %v", err)
	}
	if _, err := trust.VerifyArtifact("action-x", &v, &v.Artifacts[0], time.Now()); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("publisher signed outside its patterns: %v", err)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	ix, _, _ := build(t)
	good := string(marshal(t, ix))
	cases := []struct {
		old, new, field, msg string
	}{
		{`"sha256": "abab`, `"sha256": "zz`, "plugins[0].versions[0].artifacts[0].sha256", "must be 64 hex digits"},
		{`"version": "1.2.3"`, `"version": "v1.2"`, "plugins[0].versions[0].version", "semantic version"},
		{`"os": "linux"`, `"os": "Linux!"`, "plugins[0].versions[0].artifacts[0].os", "GOOS"},
		{`"url": "artifacts/`, `"url": "../../etc/`, "plugins[0].versions[0].artifacts[0].url", "inside the registry"},
		{`"size": 42`, `"size": -1`, "plugins[0].versions[0].artifacts[0].size", "positive"},
		{`"size": 42`, `"size": 4.2`, "plugins[0].versions[0].artifacts[0].size", "integer"},
		{`"categories": [`, `"colour": "red", "categories": [`, "plugins[0].colour", "unknown field"},
		{`"name": "engine-docker"`, `"name": "engine-docker", "name": "x"`, "plugins[0].name", "duplicate key"},
		{`"formatVersion": 1`, `"formatVersion": 2`, "formatVersion", "unsupported format"},
		{`"expires": "`, `"expires": "tomorrow", "x": "`, "x", "unknown field"},
		{`"license": "Apache-2.0"`, `"license": ""`, "plugins[0].license", "SPDX"},
		{`"categories": [`, `"categories": ["toaster",`, "plugins[0].categories[0]", "must be one of"},
		{`"protocolVersions": [`, `"protocolVersions": ["one",`, "plugins[0].versions[0].protocolVersions[0]", "integer"},
		{`"size": 42`, `"size": "42"`, "plugins[0].versions[0].artifacts[0].size", "must be an integer"},
		{`"publishers": [`, `"publishers": null, "publishers2": [`, "publishers", "must be an array"},
	}
	for _, c := range cases {
		bad := strings.Replace(good, c.old, c.new, 1)
		if bad == good {
			t.Fatalf("case %q did not apply", c.old)
		}
		_, err := index.Parse([]byte(bad))
		var re *registry.Error
		if !errors.As(err, &re) || !errors.Is(err, registry.ErrInvalidIndex) {
			t.Errorf("%s: got %v", c.field, err)
			continue
		}
		if re.Field != c.field || !strings.Contains(re.Detail, c.msg) {
			t.Errorf("%s: got field %q detail %q", c.field, re.Field, re.Detail)
		}
	}
	for _, bad := range []string{"", "[]", "{", "null", good + "{}", "\xff"} {
		if _, err := index.Parse([]byte(bad)); !errors.Is(err, registry.ErrInvalidIndex) {
			t.Errorf("Parse(%q) = %v", bad, err)
		}
	}
}

func TestCanonical(t *testing.T) {
	got, err := index.Canonical(map[string]any{"b": []any{json.Number("10"), true, nil}, "a": "x\"\\\n<&>é", "c": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"x\"\\\u000a<&>é","b":[10,true,null],"c":{}}`
	if string(got) != want {
		t.Errorf("canonical = %s\nwant        %s", got, want)
	}
	if _, err := index.Canonical(1.5); err == nil {
		t.Error("float accepted")
	}
}

func FuzzParse(f *testing.F) {
	ix, _, _ := build(f)
	f.Add(marshal(f, ix))
	f.Add([]byte(`{"formatVersion":1,"name":"x","version":1,"expires":"2030-01-01T00:00:00Z","publishers":[],"plugins":[]}`))
	f.Add([]byte(`{"a":{"a":{"a":[[[[1]]]]}}}`))
	f.Add([]byte(lifecycleIndex))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := index.Parse(data)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidIndex) {
				t.Fatalf("error without ErrInvalidIndex: %v", err)
			}
			return
		}
		// Whatever parses re-encodes to an index that parses to the same
		// signed payload.
		out, err := ix.Marshal()
		if err != nil {
			t.Fatalf("marshal parsed index: %v", err)
		}
		again, err := index.Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		p2, _ := again.SignedPayload()
		p3, _ := ix.Payload()
		if !bytes.Equal(p2, p3) {
			t.Fatalf("payload of re-encoded index differs:\n%s\n%s", p2, p3)
		}
	})
}

const lifecycleIndex = `{"formatVersion":1,"name":"x","version":1,"expires":"2030-01-01T00:00:00Z","publishers":[],"plugins":[],` +
	`"rootChain":[{"version":1,"keys":["` + hex64a + `"],"threshold":1,"signatures":[{"keyId":"0123456789abcdef","sig":"` + hex64a + hex64a + `"}]}],` +
	`"revoked":[{"keyId":"0123456789abcdef","reason":"lost","revoked":"2026-01-01T00:00:00Z","signatures":[{"keyId":"0123456789abcdef","sig":"` + hex64a + hex64a + `"}]}]}`

const hex64a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// The key lifecycle fields are checked like the others: every refusal
// names the field.
func TestKeyLifecycleFieldsNamed(t *testing.T) {
	if _, err := index.Parse([]byte(lifecycleIndex)); err != nil {
		t.Fatalf("valid index refused: %v", err)
	}
	for _, c := range []struct{ from, to, field string }{
		{`"version":1,"keys"`, `"version":2,"keys"`, "rootChain[0].version"},
		{`"threshold":1`, `"threshold":2`, "rootChain[0].threshold"},
		{`"keys":["` + hex64a + `"]`, `"keys":["zz"]`, "rootChain[0].keys[0]"},
		{`"keys":["` + hex64a + `"]`, `"keys":[]`, "rootChain[0].keys"},
		{`"reason":"lost"`, `"reason":" "`, "revoked[0].reason"},
		{`"revoked":"2026-01-01T00:00:00Z"`, `"revoked":"yesterday"`, "revoked[0].revoked"},
		{`"keyId":"0123456789abcdef","reason"`, `"keyId":"xyz","reason"`, "revoked[0].keyId"},
		{`"threshold":1,`, `"threshold":1,"extra":true,`, "rootChain[0].extra"},
	} {
		bad := strings.Replace(lifecycleIndex, c.from, c.to, 1)
		if bad == lifecycleIndex {
			t.Fatalf("case %s: replacement did not apply", c.field)
		}
		_, err := index.Parse([]byte(bad))
		var re *registry.Error
		if !errors.As(err, &re) || re.Field != c.field {
			t.Errorf("%s: got %v, want a refusal naming %s", c.field, err, c.field)
		}
	}
}
