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
// {"expires","keyId","plugins","publicKey","registry"}.
func DelegationStatement(registryName string, p *Publisher) ([]byte, error) {
	c, err := Canonical(map[string]any{
		"registry":  registryName,
		"keyId":     p.KeyID,
		"publicKey": p.PublicKey,
		"plugins":   slices.Clone(p.Plugins),
		"expires":   p.Expires,
	})
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
	Registry   string
	publishers map[string]*delegation
}

type delegation struct {
	pub      ed25519.PublicKey
	patterns []string
	expires  time.Time
	err      error // non-nil when the delegation is not usable
}

// Verify checks the index against the pinned roots at time now: the root
// signatures over the whole index, its expiry, and every publisher
// delegation. It returns the Trust used to check artifacts.
func (ix *Index) Verify(roots Roots, now time.Time) (*Trust, error) {
	if err := ix.CheckRootSignatures(roots); err != nil {
		return nil, err
	}
	if exp := ix.ExpiresAt(); !now.Before(exp) {
		return nil, &registry.Error{Kind: registry.ErrExpired, Registry: ix.Name, Field: "expires",
			Detail: fmt.Sprintf("index expired at %s", ix.Expires),
			Hint:   "the registry has not been re-signed (or a stale copy is being served); ask its operator to re-sign it, or check this machine's clock"}
	}
	t := &Trust{Registry: ix.Name, publishers: map[string]*delegation{}}
	for i := range ix.Publishers {
		p := &ix.Publishers[i]
		pub, _ := sign.ParsePublicKey(p.PublicKey) // validated by Parse
		d := &delegation{pub: pub, patterns: p.Plugins}
		d.expires, _ = time.Parse(time.RFC3339, p.Expires)
		msg, err := DelegationStatement(ix.Name, p)
		switch {
		case err != nil:
			d.err = err
		case roots.countValid(msg, p.Signatures) < roots.threshold():
			d.err = &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("publishers[%d]", i),
				Detail: "publisher key " + p.KeyID + " is not delegated by a pinned root key"}
		case !now.Before(d.expires):
			d.err = &registry.Error{Kind: registry.ErrSignature, Registry: ix.Name, Field: fmt.Sprintf("publishers[%d].expires", i),
				Detail: "delegation of publisher key " + p.KeyID + " expired at " + p.Expires,
				Hint:   "ask the registry operator to renew the publisher's delegation", Err: registry.ErrExpired}
		}
		t.publishers[p.KeyID] = d
	}
	return t, nil
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
		switch {
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
