package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/publish"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func sha256File(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func itoa(n int) string { return strconv.Itoa(n) }

func platformOS() string   { return runtime.GOOS }
func platformArch() string { return runtime.GOARCH }

func publishYank(f *regtest.Fixture, v string) (*index.Index, error) {
	return publish.Yank(f.Dir, plugin, v, "crashes on start", f.Opts)
}

// editSignedIndex replaces old with new in the signed content of f's
// index.json without signing it again, as an attacker editing the file
// would: inside the envelope's payload for a format 2 index.
func editSignedIndex(t testing.TB, f *regtest.Fixture, old, new string) {
	t.Helper()
	p := f.Dir + "/index.json"
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !index.IsEnvelope(b) {
		if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var env index.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(env.Payload, []byte(old), []byte(new), 1)
	if bytes.Equal(edited, env.Payload) {
		t.Fatalf("%s is not in the signed index", old)
	}
	env.Payload = edited
	out, err := json.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
