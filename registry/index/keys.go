package index

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/sign"
)

// Domain prefixes of the key lifecycle statements, signed by root keys.
const (
	RootDomain       = "palvella-root-v1\n"
	RevocationDomain = "palvella-revocation-v1\n"
)

// RootLink is one version of a registry's root, as in TUF's root chaining.
// Version 1 is the root the registry was created with (signed by its own
// keys, so a publisher tool can find the root's public key); version N+1
// is signed by the keys of version N (its threshold) and by its own keys
// (its threshold). A client pinned to any version's keys follows the
// links after it, one by one, and trusts the last.
type RootLink struct {
	Version    int64       `json:"version"`
	Keys       []string    `json:"keys"`
	Threshold  int         `json:"threshold"`
	Signatures []Signature `json:"signatures"`
}

// Revocation says the root revoked a key: no signature by it counts
// again, even in an index that no longer lists the revocation (clients
// remember it).
type Revocation struct {
	KeyID      string      `json:"keyId"`
	Reason     string      `json:"reason"`
	Revoked    string      `json:"revoked"`
	Signatures []Signature `json:"signatures"`
}

// PublicKeys parses the link's keys (validated by Parse).
func (l *RootLink) PublicKeys() []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, 0, len(l.Keys))
	for _, h := range l.Keys {
		if k, err := sign.ParsePublicKey(h); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// Roots returns the link as a root key set.
func (l *RootLink) Roots() Roots { return Roots{Keys: l.PublicKeys(), Threshold: l.Threshold} }

// RootStatement returns the bytes root keys sign for a root link:
// RootDomain followed by the canonical JSON of
// {"keys","registry","threshold","version"}, keys sorted.
func RootStatement(registryName string, l *RootLink) ([]byte, error) {
	keys := slices.Clone(l.Keys)
	slices.Sort(keys)
	c, err := Canonical(map[string]any{
		"registry":  registryName,
		"version":   l.Version,
		"keys":      keys,
		"threshold": l.Threshold,
	})
	if err != nil {
		return nil, err
	}
	return append([]byte(RootDomain), c...), nil
}

// RevocationStatement returns the bytes root keys sign to revoke a key:
// RevocationDomain followed by the canonical JSON of
// {"keyId","reason","registry","revoked"}.
func RevocationStatement(registryName string, r *Revocation) ([]byte, error) {
	c, err := Canonical(map[string]any{
		"registry": registryName,
		"keyId":    r.KeyID,
		"reason":   r.Reason,
		"revoked":  r.Revoked,
	})
	if err != nil {
		return nil, err
	}
	return append([]byte(RevocationDomain), c...), nil
}

// SignRootLink adds (or replaces) key's signature on link l.
func SignRootLink(key ed25519.PrivateKey, registryName string, l *RootLink) error {
	msg, err := RootStatement(registryName, l)
	if err != nil {
		return err
	}
	s := signature(key, msg)
	l.Signatures = slices.DeleteFunc(l.Signatures, func(x Signature) bool { return x.KeyID == s.KeyID })
	l.Signatures = append(l.Signatures, s)
	return nil
}

// SignRevocation adds (or replaces) root key's signature on r.
func SignRevocation(key ed25519.PrivateKey, registryName string, r *Revocation) error {
	msg, err := RevocationStatement(registryName, r)
	if err != nil {
		return err
	}
	s := signature(key, msg)
	r.Signatures = slices.DeleteFunc(r.Signatures, func(x Signature) bool { return x.KeyID == s.KeyID })
	r.Signatures = append(r.Signatures, s)
	return nil
}

// CurrentRoot returns the newest link of the root chain, or nil when the
// index carries none (an index written before root chaining).
func (ix *Index) CurrentRoot() *RootLink {
	if len(ix.RootChain) == 0 {
		return nil
	}
	return &ix.RootChain[len(ix.RootChain)-1]
}

func sameKeys(a []ed25519.PublicKey, b []string) bool {
	ids := func(ks []string) []string {
		out := slices.Clone(ks)
		slices.Sort(out)
		return slices.Compact(out)
	}
	ha := make([]string, 0, len(a))
	for _, k := range a {
		ha = append(ha, sign.EncodePublicKey(k))
	}
	return slices.Equal(ids(ha), ids(b))
}

// FollowRoot walks the root chain from the root a client trusts: the keys
// it pinned (version 0: not known yet; the chain is searched for them) or
// the root it followed last time (version > 0). Every later link must be
// signed by the threshold of the root before it and of its own keys. It
// returns the newest root and its version (0 when the pinned keys are not
// in the chain: then only they count).
//
// A chain that ends before the version already followed is a rollback to
// an older root (ErrRollback); a link at that version with other keys is
// a fork (ErrSignature).
func (ix *Index) FollowRoot(trusted Roots, version int64) (Roots, int64, error) {
	cur, curV := trusted, version
	if curV == 0 {
		for i := len(ix.RootChain) - 1; i >= 0; i-- {
			if sameKeys(trusted.Keys, ix.RootChain[i].Keys) {
				curV = ix.RootChain[i].Version
				cur = ix.RootChain[i].Roots()
				break
			}
		}
		if curV == 0 {
			return trusted, 0, nil
		}
	} else {
		last := int64(len(ix.RootChain))
		if last < curV {
			return Roots{}, 0, &registry.Error{Kind: registry.ErrRollback, Registry: ix.Name, Field: "rootChain",
				Detail: fmt.Sprintf("the index's newest root is version %d, older than root version %d already followed", last, curV),
				Hint:   "a mirror or attacker is serving an index signed by a replaced root; report it to the registry operator"}
		}
		if l := &ix.RootChain[curV-1]; !sameKeys(trusted.Keys, l.Keys) {
			return Roots{}, 0, &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("rootChain[%d]", curV-1),
				Detail: fmt.Sprintf("root version %d in this index has other keys than the root version %d already followed", curV, curV),
				Hint:   "someone holding an old root key made another chain; do not use this index and report it to the registry operator"}
		}
	}
	for v := curV + 1; v <= int64(len(ix.RootChain)); v++ {
		l := &ix.RootChain[v-1]
		msg, err := RootStatement(ix.Name, l)
		if err != nil {
			return Roots{}, 0, err
		}
		next := l.Roots()
		if got := cur.countValid(msg, l.Signatures); got < cur.threshold() {
			return Roots{}, 0, &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("rootChain[%d]", v-1),
				Detail: fmt.Sprintf("root version %d is signed by %d of the %d keys of root version %d required", v, got, cur.threshold(), v-1),
				Hint:   "the root chain is broken; do not use this index and report it to the registry operator"}
		}
		if got := next.countValid(msg, l.Signatures); got < next.threshold() {
			return Roots{}, 0, &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("rootChain[%d]", v-1),
				Detail: fmt.Sprintf("root version %d is signed by %d of its own %d keys required", v, got, next.threshold())}
		}
		cur, curV = next, v
	}
	return cur, curV, nil
}

// revokedError describes why a key no longer counts.
func revokedDetail(keyID, reason string) string {
	if reason == "" {
		return "key " + keyID + " was revoked by the registry's root"
	}
	return "key " + keyID + " was revoked by the registry's root: " + reason
}

// checkRevocations verifies every revocation against root and returns the
// revoked key ids with their reasons.
func (ix *Index) checkRevocations(root Roots) (map[string]string, error) {
	out := map[string]string{}
	for i := range ix.Revoked {
		r := &ix.Revoked[i]
		msg, err := RevocationStatement(ix.Name, r)
		if err != nil {
			return nil, err
		}
		if root.countValid(msg, r.Signatures) < root.threshold() {
			return nil, &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("revoked[%d]", i),
				Detail: "the revocation of key " + r.KeyID + " is not signed by the registry's current root",
				Hint:   "the index was altered; report it to the registry operator"}
		}
		out[r.KeyID] = r.Reason
	}
	return out, nil
}

// VerifyOptions configure VerifyWith.
type VerifyOptions struct {
	// Roots are the root keys the client trusts: pinned, or followed last time.
	Roots Roots
	// RootVersion is the root chain version of Roots when they were
	// followed last time; 0 when they are the pinned keys.
	RootVersion int64
	// Revoked are key ids remembered as revoked (id -> reason), from
	// earlier indexes of the registry; they stay revoked even when the
	// index no longer lists them.
	Revoked map[string]string
	// Now is the time expiry is checked at.
	Now time.Time
	// IgnoreExpiry skips the index's own expiry (for a publisher
	// re-signing an expired index); delegations' expiry still applies.
	IgnoreExpiry bool
}

func validRevocationReason(s string) bool {
	return strings.TrimSpace(s) != "" && len(s) <= 1024
}

// CanSign returns why key keyID may not sign plugin in this registry, or
// nil when it may: it must be delegated by the root for a pattern
// matching plugin, and neither revoked nor expired.
func (t *Trust) CanSign(keyID, plugin string) error {
	d, err := t.usable(keyID)
	if err != nil {
		return err
	}
	if !d.allows(plugin) {
		return &registry.Error{Kind: registry.ErrSignature, Registry: t.Registry, Plugin: plugin, Field: "publisherKey",
			Detail: "publisher key " + keyID + " may only sign " + strings.Join(d.patterns, ", "),
			Hint:   "ask the root key holder to widen its delegation (palvella registry delegate), or use the key delegated for this name"}
	}
	return nil
}

// CanSignIndex returns why key keyID may not sign the index, or nil.
func (t *Trust) CanSignIndex(keyID string) error {
	d, err := t.usable(keyID)
	if err != nil {
		return err
	}
	if !d.index {
		return &registry.Error{Kind: registry.ErrSignature, Registry: t.Registry, Field: "publisherKey",
			Detail: "publisher key " + keyID + " may sign artifacts but not the index",
			Hint:   "pass the root key too (--root-key), or ask its holder to delegate with --index"}
	}
	return nil
}

func (t *Trust) usable(keyID string) (*delegation, error) {
	if why, ok := t.Revoked[keyID]; ok {
		return nil, &registry.Error{Kind: registry.ErrSignature, Registry: t.Registry, Field: "publisherKey",
			Detail: revokedDetail(keyID, why), Err: registry.ErrRevoked,
			Hint: "use the key the root delegated in its place"}
	}
	d, ok := t.publishers[keyID]
	if !ok {
		return nil, &registry.Error{Kind: registry.ErrSignature, Registry: t.Registry, Field: "publisherKey",
			Detail: "publisher key " + keyID + " is not delegated in this registry",
			Hint:   "ask the root key holder to run palvella registry delegate for it"}
	}
	if d.err != nil {
		return nil, d.err
	}
	return d, nil
}

// RevokedSigners returns, of the key ids in signedBy, those revoked, with
// their reasons; all is true when every one of them is.
func RevokedSigners(revoked map[string]string, signedBy []string) (hit map[string]string, all bool) {
	hit = map[string]string{}
	for _, id := range signedBy {
		if why, ok := revoked[id]; ok {
			hit[id] = why
		}
	}
	return hit, len(signedBy) > 0 && len(hit) == len(signedBy)
}
