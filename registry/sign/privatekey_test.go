package sign

import (
	"path/filepath"
	"strings"
	"testing"
)

// A private key given where a public one is expected is refused, saying
// which file to give instead.
func TestLoadPublicKeyRefusesThePrivateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	_, priv, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(path, priv); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicKey(path + ".pub"); err != nil {
		t.Fatalf("the public key: %v", err)
	}
	_, err = LoadPublicKey(path)
	if err == nil || !strings.Contains(err.Error(), "this is a private key, where a public key is expected") || !strings.Contains(err.Error(), path+".pub") {
		t.Fatalf("the private key as a public one: %v", err)
	}
}
