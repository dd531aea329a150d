// Package public holds what a Palvella client needs to trust the public
// plugin registry: its name, where its index lives, and its root public key,
// compiled into the binary so that it is never taken from the index itself.
//
// The matching private key is held offline by the maintainers; a new index
// is signed on their machine and published as a pull request that changes
// registry.json (see docs/registry/hosting.md).
package public

import (
	"crypto/ed25519"
	_ "embed"
	"fmt"
	"strings"

	"github.com/palvella/palvella/registry/sign"
)

// Name is the name the public registry has in client configuration and in
// its index.
const Name = "public"

// Location is the raw URL of registry.json in the main branch of the
// Palvella repository: the index clients read by default.
const Location = "https://raw.githubusercontent.com/palvella/palvella/main/registry.json"

//go:embed root.pub
var rootPub string

// RootKey returns the public registry's pinned root public key.
func RootKey() (ed25519.PublicKey, error) {
	k, err := sign.ParsePublicKey(strings.TrimSpace(rootPub))
	if err != nil {
		return nil, fmt.Errorf("embedded root key of the public registry: %w", err)
	}
	return k, nil
}

// KeyID returns the key id of the public registry's root key.
func KeyID() string {
	k, err := RootKey()
	if err != nil {
		return ""
	}
	return sign.KeyID(k)
}
