// Package sign generates, stores and loads the ed25519 keys of a registry
// (root keys) and of its publishers, and names them by key id.
//
// A private key file holds the 32-byte seed as lowercase hex followed by a
// newline and is written with mode 0600; the public key file (KEY.pub) holds
// the 32-byte public key as lowercase hex. A key id is the first 16 hex digits
// of the sha256 of the raw public key.
package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/palvella/palvella/registry"
)

// KeyIDLen is the number of hex digits in a key id.
const KeyIDLen = 16

// KeyID returns the id of a public key: hex(sha256(pub))[:16].
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:KeyIDLen]
}

// Generate returns a new key pair from crypto/rand.
func Generate() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return pub, priv, nil
}

// WriteKeyPair writes priv to path (mode 0600) and its public half to
// path+".pub" (mode 0644). It refuses to overwrite an existing private key.
func WriteKeyPair(path string, priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return registry.Errorf(registry.ErrInvalidArgument, "key", "not an ed25519 private key")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create private key %q: %w", path, err)
	}
	_, werr := f.WriteString(hex.EncodeToString(priv.Seed()) + "\n")
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(path)
		return fmt.Errorf("write private key %q: %w", path, firstErr(werr, cerr))
	}
	pub := priv.Public().(ed25519.PublicKey)
	if err := os.WriteFile(path+".pub", []byte(EncodePublicKey(pub)+"\n"), 0o644); err != nil {
		os.Remove(path)
		return fmt.Errorf("write public key %q: %w", path+".pub", err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// LoadPrivateKey reads a private key written by WriteKeyPair. It refuses a
// key file readable by group or others.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: path,
			Detail: fmt.Sprintf("private key is accessible by other users (mode %v)", st.Mode().Perm()),
			Hint:   "run chmod 600 on it"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, registry.Errorf(registry.ErrInvalidArgument, path, "not an ed25519 private key (want 64 hex digits)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadPublicKey reads a public key file (KEY.pub).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	text := strings.TrimSpace(string(b))
	pub, err := ParsePublicKey(text)
	if err != nil {
		return nil, fmt.Errorf("read public key %q: %w", path, err)
	}
	// A private key file has the same form (64 hex digits, the seed).
	// Given one, its public key, written beside it by WriteKeyPair, tells.
	if seed, err := hex.DecodeString(text); err == nil && len(seed) == ed25519.SeedSize {
		derived := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if sib, err := os.ReadFile(path + ".pub"); err == nil && strings.TrimSpace(string(sib)) == EncodePublicKey(derived) {
			return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: path,
				Detail: "this is a private key, where a public key is expected",
				Hint:   fmt.Sprintf("pass its public key, %s; the private key stays with its owner", path+".pub")}
		}
	}
	return pub, nil
}

// EncodePublicKey returns the lowercase hex form of pub, as used in key
// files, indexes and client configuration.
func EncodePublicKey(pub ed25519.PublicKey) string { return hex.EncodeToString(pub) }

// ParsePublicKey parses the hex form of a public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	if len(s) != 2*ed25519.PublicKeySize || strings.ToLower(s) != s {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "publicKey", "must be 64 lowercase hex digits")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "publicKey", "must be 64 lowercase hex digits")
	}
	return ed25519.PublicKey(b), nil
}

// Sign signs msg with priv and returns the signature as lowercase hex.
func Sign(priv ed25519.PrivateKey, msg []byte) string {
	return hex.EncodeToString(ed25519.Sign(priv, msg))
}

// Verify reports whether sigHex is a valid signature of msg by pub.
func Verify(pub ed25519.PublicKey, msg []byte, sigHex string) bool {
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}
