package sign_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/sign"
)

func TestKeyFiles(t *testing.T) {
	pub, priv, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "keys", "root")
	if err := sign.WriteKeyPair(p, priv); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	if err := sign.WriteKeyPair(p, priv); err == nil {
		t.Error("overwrote an existing private key")
	}
	loaded, err := sign.LoadPrivateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(priv) {
		t.Error("loaded private key differs")
	}
	lpub, err := sign.LoadPublicKey(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !lpub.Equal(pub) {
		t.Error("loaded public key differs")
	}
	id := sign.KeyID(pub)
	if len(id) != 16 || id != sign.KeyID(lpub) {
		t.Errorf("key id %q", id)
	}
	msg := []byte("hello")
	sig := sign.Sign(loaded, msg)
	if !sign.Verify(lpub, msg, sig) || sign.Verify(lpub, []byte("hellO"), sig) || sign.Verify(lpub, msg, "zz") {
		t.Error("sign/verify round trip wrong")
	}

	os.Chmod(p, 0o644)
	if _, err := sign.LoadPrivateKey(p); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("loaded a world-readable private key: %v", err)
	}
}

func TestParsePublicKey(t *testing.T) {
	for _, bad := range []string{"", "abc", "ZZ" + string(make([]byte, 62)), "AB" + "cd"} {
		if _, err := sign.ParsePublicKey(bad); !errors.Is(err, registry.ErrInvalidArgument) {
			t.Errorf("ParsePublicKey(%q) = %v", bad, err)
		}
	}
}
