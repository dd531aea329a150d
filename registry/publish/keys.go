package publish

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/sign"
)

// RevokeKey records, signed by the root, that key keyID is revoked, and
// removes its delegation. Clients refuse every signature by it from then
// on (and remember it, even if a later index stops listing it): artifacts
// it alone signed are refused until another key signs them
// (SignArtifacts), and installed plugins it signed show as revoked. A
// current root key is not revoked this way: rotate the root instead.
func RevokeKey(dir, keyID, reason string, o Options) (*index.Index, error) {
	if err := needRoot(o, "revoking a key"); err != nil {
		return nil, err
	}
	if len(keyID) != sign.KeyIDLen || strings.Trim(keyID, "0123456789abcdef") != "" {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "keyId", "must be a key id of 16 hex digits (see palvella registry keygen or the index's publishers)")
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 1024 {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "reason", "say why the key is revoked (at most 1024 bytes)")
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	for _, k := range trust.Root.Keys {
		if sign.KeyID(k) == keyID {
			return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "keyId",
				Detail: keyID + " is a current root key; revoking it would leave the registry without a root",
				Hint:   "rotate the root with palvella registry rotate-root, which replaces it"}
		}
	}
	if slices.ContainsFunc(ix.Revoked, func(r index.Revocation) bool { return r.KeyID == keyID }) {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "keyId", Detail: "key " + keyID + " is already revoked"}
	}
	r := index.Revocation{KeyID: keyID, Reason: reason, Revoked: o.now().Truncate(time.Second).Format(time.RFC3339)}
	for _, k := range o.rootKeys() {
		if err := index.SignRevocation(k, ix.Name, &r); err != nil {
			return nil, err
		}
	}
	ix.Revoked = append(ix.Revoked, r)
	ix.Publishers = slices.DeleteFunc(ix.Publishers, func(p index.Publisher) bool { return p.KeyID == keyID })
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	return ix, nil
}

// RotateRoot replaces the root keys (o.RootKey and o.CoSigners) by
// newKeys: it appends a root version signed by the old keys and the new
// ones, so clients pinned to the old root follow it, and re-signs every
// delegation and revocation with the new keys (they are checked against
// the newest root). The index is then signed by the new keys. threshold
// is how many of newKeys must sign from now on (0: all of them).
func RotateRoot(dir string, newKeys []ed25519.PrivateKey, threshold int, o Options) (*index.Index, error) {
	if err := needRoot(o, "rotating the root"); err != nil {
		return nil, err
	}
	if len(newKeys) == 0 {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "newRoot", "at least one new root key is needed")
	}
	if threshold == 0 {
		threshold = len(newKeys)
	}
	if threshold < 1 || threshold > len(newKeys) {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "threshold", "must be between 1 and the number of new root keys")
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	if err := recordRoot(ix, o); err != nil {
		return nil, err
	}
	l := index.RootLink{Version: int64(len(ix.RootChain) + 1), Threshold: threshold}
	for _, k := range newKeys {
		if len(k) != ed25519.PrivateKeySize {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "newRoot", "not an ed25519 private key")
		}
		pub := k.Public().(ed25519.PublicKey)
		if _, bad := trust.Revoked[sign.KeyID(pub)]; bad {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "newRoot", "key "+sign.KeyID(pub)+" was revoked")
		}
		h := sign.EncodePublicKey(pub)
		if slices.Contains(l.Keys, h) {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "newRoot", "key "+sign.KeyID(pub)+" is given twice")
		}
		l.Keys = append(l.Keys, h)
	}
	if cur := ix.CurrentRoot(); slices.Equal(sortedCopy(cur.Keys), sortedCopy(l.Keys)) {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "newRoot", "the new root keys are the current ones")
	}
	for _, k := range append(o.rootKeys(), newKeys...) {
		if err := index.SignRootLink(k, ix.Name, &l); err != nil {
			return nil, err
		}
	}
	ix.RootChain = append(ix.RootChain, l)
	for i := range ix.Publishers {
		ix.Publishers[i].Signatures = nil
		for _, k := range newKeys {
			if err := index.SignDelegation(k, ix.Name, &ix.Publishers[i]); err != nil {
				return nil, err
			}
		}
	}
	for i := range ix.Revoked {
		ix.Revoked[i].Signatures = nil
		for _, k := range newKeys {
			if err := index.SignRevocation(k, ix.Name, &ix.Revoked[i]); err != nil {
				return nil, err
			}
		}
	}
	no := o
	no.RootKey, no.CoSigners = newKeys[0], newKeys[1:]
	if err := save(dir, ix, no); err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	return ix, nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// SignedArtifact is one artifact SignArtifacts signed.
type SignedArtifact struct {
	Plugin, Version, Platform string
}

// SignArtifacts signs, with publisher key key, every artifact it is
// delegated for that carries no valid signature by a usable key (for
// example because the key that signed it was revoked), or, when from is
// set, every such artifact signed by key id from. The artifacts' bytes do
// not change: the signature covers their name, version, platform, size and
// sha256, and an artifact stored in the folder is hashed again first. The
// index is signed with o (the root key, or key itself when it may sign the
// index: set o.IndexKey).
func SignArtifacts(dir string, key ed25519.PrivateKey, from string, o Options) (*index.Index, []SignedArtifact, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, nil, registry.Errorf(registry.ErrInvalidArgument, "key", "an ed25519 publisher key is required")
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, nil, err
	}
	id := sign.KeyID(key.Public().(ed25519.PublicKey))
	var done []SignedArtifact
	var refused []string
	now := o.now()
	for i := range ix.Plugins {
		p := &ix.Plugins[i]
		if trust.CanSign(id, p.Name) != nil {
			continue
		}
		for j := range p.Versions {
			v := &p.Versions[j]
			for k := range v.Artifacts {
				a := &v.Artifacts[k]
				if slices.ContainsFunc(a.Signatures, func(s index.Signature) bool { return s.KeyID == id }) {
					continue
				}
				if from != "" {
					if !slices.ContainsFunc(a.Signatures, func(s index.Signature) bool { return s.KeyID == from }) {
						continue
					}
				} else if _, err := trust.VerifyArtifact(p.Name, v, a, now); err == nil {
					continue // already good
				}
				if err := checkStored(dir, a); err != nil {
					refused = append(refused, fmt.Sprintf("%s %s %s: %v", p.Name, v.Version, a.Platform(), err))
					continue
				}
				if err := index.SignArtifact(key, p.Name, v, a); err != nil {
					return nil, nil, err
				}
				done = append(done, SignedArtifact{Plugin: p.Name, Version: v.Version, Platform: a.Platform()})
			}
		}
	}
	if len(refused) > 0 {
		return nil, nil, &registry.Error{Kind: registry.ErrChecksum,
			Detail: "not signing artifacts whose stored bytes differ from the index: " + strings.Join(refused, "; "),
			Hint:   "restore the published files; nothing was signed"}
	}
	if len(done) == 0 {
		return ix, nil, nil
	}
	if err := save(dir, ix, o); err != nil {
		return nil, nil, fmt.Errorf("sign artifacts with %s: %w", id, err)
	}
	return ix, done, nil
}

// checkStored re-hashes an artifact kept in the registry folder (a
// relative URL); one hosted elsewhere is covered by its recorded sha256.
func checkStored(dir string, a *index.Artifact) error {
	if !index.SafeRelPath(a.URL) {
		return nil
	}
	sum, size, err := hashFile(filepath.Join(dir, filepath.FromSlash(a.URL)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is missing", a.URL)
		}
		return err
	}
	if sum != a.SHA256 || size != a.Size {
		return fmt.Errorf("%s has sha256 %s and %d bytes, the index says %s and %d", a.URL, sum, size, a.SHA256, a.Size)
	}
	return nil
}
