// Package token is the first-party authentication plugin of Palvella: API
// tokens issued by the server, stored as sha256 hashes in the plugin's own
// sqlite file, and an optional bootstrap management token from the
// configuration.
//
// A token is 32 random bytes printed as "pvt_" followed by their unpadded
// base64url form (47 characters in all). The plaintext is returned once, by
// CreateToken, and never stored: the database holds its sha256, looked up
// by hash. Tokens are presented with the scheme "bearer".
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// Prefix starts every token, so that a leaked token is easy to recognise
// (by secret scanners, for example).
const Prefix = "pvt_"

// tokenBytes is the number of random bytes in a token.
const tokenBytes = 32

// tokenLen is the length of a printed token.
var tokenLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

var errNotAToken = errors.New("not a palvella token")

// ParseToken returns the random bytes of a printed token. It accepts only
// the canonical spelling that FormatToken writes, so every token has
// exactly one.
func ParseToken(s string) ([]byte, error) {
	if len(s) != tokenLen || !strings.HasPrefix(s, Prefix) {
		return nil, errNotAToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s[len(Prefix):])
	if err != nil || len(raw) != tokenBytes {
		return nil, errNotAToken
	}
	return raw, nil
}

// FormatToken prints the random bytes of a token.
func FormatToken(raw []byte) string {
	return Prefix + base64.RawURLEncoding.EncodeToString(raw)
}

// newToken returns a fresh random token and its hash.
func newToken() (string, []byte, error) {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	return FormatToken(raw), hashToken(raw), nil
}

// hashToken is what the database stores and looks tokens up by.
func hashToken(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}
