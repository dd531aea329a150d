package builtin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
)

// keySize is the size of an AES-256 key.
const keySize = 32

// aadPrefix starts the additional data of every record. The record's name
// follows it, so a sealed value opens only under the name it was sealed
// for: swapping two rows in the database makes both unreadable instead of
// exchanging their values.
const aadPrefix = "palvella/credential-builtin/v1\x00credential\x00"

// keyCheckAAD is the additional data of the key check record, which tells a
// wrong key apart from an empty database.
const keyCheckAAD = "palvella/credential-builtin/v1\x00key-check"

// keyCheckPlaintext is what the key check record seals.
var keyCheckPlaintext = []byte("palvella credential-builtin key check")

var errBadKey = errors.New("a key is 32 bytes, written in base64")

// parseKey decodes a base64 key (standard or URL alphabet, padded or not).
// Errors never repeat the input.
func parseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == keySize {
			return key, nil
		}
	}
	return nil, errBadKey
}

// sealer encrypts records with AES-256-GCM.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != keySize {
		return nil, errBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plaintext under a fresh random nonce.
func (s *sealer) seal(plaintext []byte, aad string) (nonce, sealed []byte, err error) {
	nonce = make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, s.aead.Seal(nil, nonce, plaintext, []byte(aad)), nil
}

// open decrypts; it fails for a wrong key, another record's additional
// data, or any change to nonce or ciphertext.
func (s *sealer) open(nonce, sealed []byte, aad string) ([]byte, error) {
	if len(nonce) != s.aead.NonceSize() {
		return nil, errors.New("record has a malformed nonce")
	}
	return s.aead.Open(nil, nonce, sealed, []byte(aad))
}
