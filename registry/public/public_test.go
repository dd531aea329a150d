package public

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry/index"
)

func TestRootKeySignsTheCommittedIndex(t *testing.T) {
	k, err := RootKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(KeyID()) != 16 {
		t.Fatalf("KeyID() = %q", KeyID())
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Name != Name {
		t.Errorf("registry.json is named %q, want %q", ix.Name, Name)
	}
	if err := ix.CheckRootSignatures(index.Roots{Keys: []ed25519.PublicKey{k}}); err != nil {
		t.Fatalf("registry.json is not signed by the embedded root key: %v", err)
	}
}
