package index

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/sign"
)

func signature(k ed25519.PrivateKey, msg []byte) Signature {
	return Signature{KeyID: sign.KeyID(k.Public().(ed25519.PublicKey)), Sig: sign.Sign(k, msg)}
}

// ArtifactStatement returns the bytes a publisher signs for one artifact:
// ArtifactDomain followed by the canonical JSON of
// {"arch","name","os","protocolVersions","sha256","size","version"}.
// Binding name, version and platform means a signature valid for one
// version can never be reused for another.
func ArtifactStatement(plugin string, v *Version, a *Artifact) ([]byte, error) {
	pv := slices.Clone(v.ProtocolVersions)
	slices.Sort(pv)
	c, err := Canonical(map[string]any{
		"name":             plugin,
		"version":          v.Version,
		"os":               a.OS,
		"arch":             a.Arch,
		"sha256":           a.SHA256,
		"size":             a.Size,
		"protocolVersions": pv,
	})
	if err != nil {
		return nil, err
	}
	return append([]byte(ArtifactDomain), c...), nil
}

// DelegationStatement returns the bytes a root key signs to delegate to a
// publisher: DelegationDomain followed by the canonical JSON of
// {"expires","keyId","plugins","publicKey","registry"}, with "index": true
// added when the publisher may sign the index (absent otherwise, so
// delegations signed before the field existed keep verifying).
func DelegationStatement(registryName string, p *Publisher) ([]byte, error) {
	v := map[string]any{
		"registry":  registryName,
		"keyId":     p.KeyID,
		"publicKey": p.PublicKey,
		"plugins":   slices.Clone(p.Plugins),
		"expires":   p.Expires,
	}
	if p.Index {
		v["index"] = true
	}
	c, err := Canonical(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(DelegationDomain), c...), nil
}

// SignArtifact adds (or replaces) the signature of key on artifact a.
func SignArtifact(key ed25519.PrivateKey, plugin string, v *Version, a *Artifact) error {
	msg, err := ArtifactStatement(plugin, v, a)
	if err != nil {
		return err
	}
	s := signature(key, msg)
	a.Signatures = slices.DeleteFunc(a.Signatures, func(x Signature) bool { return x.KeyID == s.KeyID })
	a.Signatures = append(a.Signatures, s)
	return nil
}

// SignDelegation adds (or replaces) the signature of root key on p.
func SignDelegation(root ed25519.PrivateKey, registryName string, p *Publisher) error {
	msg, err := DelegationStatement(registryName, p)
	if err != nil {
		return err
	}
	s := signature(root, msg)
	p.Signatures = slices.DeleteFunc(p.Signatures, func(x Signature) bool { return x.KeyID == s.KeyID })
	p.Signatures = append(p.Signatures, s)
	return nil
}

// Roots is the set of root public keys a client pins for one registry.
type Roots struct {
	Keys []ed25519.PublicKey
	// Threshold is how many distinct pinned keys must sign; 0 means 1.
	Threshold int
}

func (r Roots) threshold() int {
	if r.Threshold < 1 {
		return 1
	}
	return r.Threshold
}

// CheckRootSignatures checks that enough pinned root keys signed the index,
// without looking at its expiry.
func (ix *Index) CheckRootSignatures(roots Roots) error {
	payload, err := ix.SignedPayload()
	if err != nil {
		return err
	}
	if len(roots.Keys) == 0 {
		return &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name,
			Detail: "no root public key is pinned for this registry",
			Hint:   "add the registry's root public key to its configuration"}
	}
	if got := roots.countValid(payload, ix.Signatures); got < roots.threshold() {
		ids := make([]string, 0, len(ix.Signatures))
		var altered []string
		for _, s := range ix.Signatures {
			ids = append(ids, s.KeyID)
			for _, k := range roots.Keys {
				if sign.KeyID(k) == s.KeyID && !sign.Verify(k, payload, s.Sig) {
					altered = append(altered, s.KeyID)
				}
			}
		}
		if len(altered) > 0 {
			// A pinned key did sign, but other content: someone changed the
			// index after it was signed.
			return &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: "signatures",
				Detail: fmt.Sprintf("the index content was altered after signing: the signature by pinned root key %s does not match it", strings.Join(altered, ", ")),
				Hint:   "do not use this copy; fetch the index again from the registry, or report it to the registry operator"}
		}
		return &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: "signatures",
			Detail: fmt.Sprintf("index is signed by %d of the %d pinned root keys required (signatures by: %s)", got, roots.threshold(), strings.Join(ids, ", ")),
			Hint:   "the index was altered or signed by another key; check the pinned root key with the registry operator"}
	}
	return nil
}

func (r Roots) countValid(msg []byte, sigs []Signature) int {
	n := 0
	for _, k := range r.Keys {
		id := sign.KeyID(k)
		for _, s := range sigs {
			if s.KeyID == id && sign.Verify(k, msg, s.Sig) {
				n++
				break
			}
		}
	}
	return n
}

// Trust is the outcome of verifying an index: which publisher keys the
// pinned roots delegate to, and why the others were refused.
type Trust struct {
	Registry string
	// Root is the root the index was verified with, after following the
	// root chain, and RootVersion its version (0: the pinned keys, not
	// found in the chain).
	Root        Roots
	RootVersion int64
	// Revoked are the revoked key ids (from the index and from the
	// caller's memory) with their reasons.
	Revoked map[string]string
	// SignedByRoot is true when the root signed the index itself; false
	// when a publisher delegated to sign the index did.
	SignedByRoot bool
	// IndexSigners are the key ids whose signature over the index counted.
	IndexSigners []string
	publishers   map[string]*delegation
}

type delegation struct {
	pub      ed25519.PublicKey
	patterns []string
	index    bool
	expires  time.Time
	err      error // non-nil when the delegation is not usable
}

// Verify checks the index against the pinned roots at time now (see
// VerifyWith).
func (ix *Index) Verify(roots Roots, now time.Time) (*Trust, error) {
	return ix.VerifyWith(VerifyOptions{Roots: roots, Now: now})
}

// VerifyWith checks the index: it follows the root chain from o.Roots,
// checks every revocation against the newest root, every publisher
// delegation, the index's expiry and its signatures (by the root, or by a
// publisher the root delegated to sign the index that is neither revoked
// nor expired). It returns the Trust used to check artifacts.
func (ix *Index) VerifyWith(o VerifyOptions) (*Trust, error) {
	if len(o.Roots.Keys) == 0 {
		return nil, &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name,
			Detail: "no root public key is pinned for this registry",
			Hint:   "add the registry's root public key to its configuration"}
	}
	root, rootV, err := ix.FollowRoot(o.Roots, o.RootVersion)
	if err != nil {
		return nil, err
	}
	revoked, err := ix.checkRevocations(root)
	if err != nil {
		return nil, err
	}
	for id, why := range o.Revoked {
		if _, ok := revoked[id]; !ok {
			revoked[id] = why
		}
	}
	t := &Trust{Registry: ix.Name, Root: root, RootVersion: rootV, Revoked: revoked, publishers: map[string]*delegation{}}
	for i := range ix.Publishers {
		p := &ix.Publishers[i]
		pub, _ := sign.ParsePublicKey(p.PublicKey) // validated by Parse
		d := &delegation{pub: pub, patterns: p.Plugins, index: p.Index}
		d.expires, _ = time.Parse(time.RFC3339, p.Expires)
		msg, err := DelegationStatement(ix.Name, p)
		why, isRevoked := revoked[p.KeyID]
		switch {
		case err != nil:
			d.err = err
		case isRevoked:
			d.err = &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("publishers[%d]", i),
				Detail: revokedDetail(p.KeyID, why), Err: registry.ErrRevoked}
		case root.countValid(msg, p.Signatures) < root.threshold():
			d.err = &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("publishers[%d]", i),
				Detail: "publisher key " + p.KeyID + " is not delegated by the registry's root key"}
		case !o.Now.Before(d.expires):
			d.err = &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("publishers[%d].expires", i),
				Detail: "delegation of publisher key " + p.KeyID + " expired at " + p.Expires,
				Hint:   "ask the registry operator to renew the publisher's delegation", Err: registry.ErrExpired}
		}
		t.publishers[p.KeyID] = d
	}
	if err := ix.checkIndexSignatures(t); err != nil {
		return nil, err
	}
	if exp := ix.ExpiresAt(); !o.IgnoreExpiry && !o.Now.Before(exp) {
		return nil, &registry.Error{Kind: registry.ErrExpired, Registry: ix.Name, Field: "expires",
			Detail: fmt.Sprintf("index expired at %s", ix.Expires),
			Hint:   "the registry has not been re-signed (or a stale copy is being served); ask its operator to re-sign it, or check this machine's clock"}
	}
	return t, nil
}

// checkIndexSignatures accepts the index when the root (at its threshold)
// signed it, or a usable publisher delegated to sign the index did.
func (ix *Index) checkIndexSignatures(t *Trust) error {
	payload, err := ix.SignedPayload()
	if err != nil {
		return err
	}
	for _, k := range t.Root.Keys {
		id := sign.KeyID(k)
		if _, bad := t.Revoked[id]; bad {
			continue
		}
		for _, s := range ix.Signatures {
			if s.KeyID == id && sign.Verify(k, payload, s.Sig) {
				t.IndexSigners = append(t.IndexSigners, id)
				break
			}
		}
	}
	if len(t.IndexSigners) >= t.Root.threshold() {
		t.SignedByRoot = true
		return nil
	}
	t.IndexSigners = nil
	var altered, refused []string
	for _, s := range ix.Signatures {
		d, ok := t.publishers[s.KeyID]
		if !ok || !d.index {
			continue
		}
		if !sign.Verify(d.pub, payload, s.Sig) {
			altered = append(altered, s.KeyID)
			continue
		}
		if d.err != nil {
			var re *registry.Error
			if errors.As(d.err, &re) {
				refused = append(refused, re.Detail)
			} else {
				refused = append(refused, d.err.Error())
			}
			continue
		}
		t.IndexSigners = append(t.IndexSigners, s.KeyID)
		return nil
	}
	if len(refused) > 0 {
		return &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: "signatures",
			Detail: "the index is signed by a publisher key that may not sign it now: " + strings.Join(refused, "; "),
			Hint:   "ask the registry operator to re-sign the index with the root key or another publisher key", Err: errRevokedIn(refused, t)}
	}
	if err := ix.CheckRootSignatures(t.Root); err != nil {
		if len(altered) > 0 {
			var re *registry.Error
			if errors.As(err, &re) && !strings.Contains(re.Detail, "altered") {
				cp := *re
				cp.Detail = fmt.Sprintf("the index content was altered after signing: the signature by publisher key %s does not match it", strings.Join(altered, ", "))
				cp.Hint = "do not use this copy; fetch the index again from the registry, or report it to the registry operator"
				return &cp
			}
		}
		return err
	}
	return nil
}

func errRevokedIn(reasons []string, t *Trust) error {
	for _, r := range reasons {
		if strings.Contains(r, "was revoked") {
			return registry.ErrRevoked
		}
	}
	return nil
}

// VerifyArtifact checks that a carries at least one valid signature by a
// delegated, unexpired publisher allowed to sign plugin. It returns the key
// ids of the valid signatures.
func (t *Trust) VerifyArtifact(plugin string, v *Version, a *Artifact, now time.Time) ([]string, error) {
	base := registry.Error{Kind: registry.ErrSignature, Registry: t.Registry, Plugin: plugin, Version: v.Version}
	if len(a.Signatures) == 0 {
		e := base
		e.Detail = "artifact for " + a.Platform() + " is not signed"
		e.Hint = "ask the publisher to sign it, or allow unsigned plugins in the trust policy"
		return nil, &e
	}
	msg, err := ArtifactStatement(plugin, v, a)
	if err != nil {
		return nil, err
	}
	var valid []string
	var reasons []string
	var cause error
	for _, s := range a.Signatures {
		d, ok := t.publishers[s.KeyID]
		why, isRevoked := t.Revoked[s.KeyID]
		switch {
		case isRevoked:
			reasons = append(reasons, revokedDetail(s.KeyID, why))
			cause = registry.ErrRevoked
		case !ok:
			reasons = append(reasons, "key "+s.KeyID+" is not a known publisher")
		case d.err != nil:
			var re *registry.Error
			if errors.As(d.err, &re) {
				reasons = append(reasons, re.Detail)
				if re.Err != nil {
					cause = re.Err
				}
			} else {
				reasons = append(reasons, d.err.Error())
			}
		case !d.allows(plugin):
			reasons = append(reasons, "key "+s.KeyID+" may only sign "+strings.Join(d.patterns, ", "))
		case !now.Before(d.expires):
			reasons = append(reasons, "delegation of key "+s.KeyID+" expired")
			cause = registry.ErrExpired
		case !sign.Verify(d.pub, msg, s.Sig):
			reasons = append(reasons, "signature by "+s.KeyID+" does not match this name, version, platform, size and sha256")
		default:
			valid = append(valid, s.KeyID)
		}
	}
	if len(valid) == 0 {
		e := base
		e.Detail = "no valid publisher signature on artifact for " + a.Platform() + ": " + strings.Join(reasons, "; ")
		e.Hint = "do not install it; report it to the registry operator"
		e.Err = cause
		return nil, &e
	}
	return valid, nil
}

func (d *delegation) allows(name string) bool {
	for _, p := range d.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
