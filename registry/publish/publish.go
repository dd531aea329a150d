// Package publish holds the publisher's operations on a registry
// directory: init, delegate to a publisher key, publish a binary, yank,
// re-sign, verify a registry, and export or import an offline bundle.
//
// A registry directory is static: index.json plus artifacts/NAME/VERSION/
// NAME_OS_ARCH (and blobs/sha256/HEX for mirrored absolute URLs). Every
// change bumps the index version, refreshes its expiry and re-signs it with
// the root key, and the index is replaced atomically. Keys never live in
// the registry directory.
package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/fsutil"
	"github.com/palvella/palvella/registry/manifest"
	"github.com/palvella/palvella/registry/sign"
)

// DefaultValidity is how long a freshly signed index stays valid. Clients
// refuse an expired index, so an operator re-signs (any change re-signs)
// at least this often.
const DefaultValidity = 30 * 24 * time.Hour

// Options are shared by every operation that re-signs the index.
type Options struct {
	// RootKey signs the index, and the delegations, revocations and root
	// versions that need the root. It may be nil for operations a
	// publisher does alone (Publish, SignArtifacts): IndexKey then signs
	// the index.
	RootKey ed25519.PrivateKey
	// CoSigners are further root keys that sign the index too, for
	// registries whose clients require more than one root signature.
	CoSigners []ed25519.PrivateKey
	// IndexKey is a publisher key delegated with Index, used to sign the
	// index when RootKey is nil, so the root key can stay offline.
	IndexKey ed25519.PrivateKey
	// Validity is how long the new index is valid (0: DefaultValidity).
	Validity time.Duration
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
}

func (o *Options) rootKeys() []ed25519.PrivateKey {
	if o.RootKey == nil {
		return nil
	}
	return append([]ed25519.PrivateKey{o.RootKey}, o.CoSigners...)
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o *Options) validity() time.Duration {
	if o.Validity > 0 {
		return o.Validity
	}
	return DefaultValidity
}

func indexPath(dir string) string { return filepath.Join(dir, client.IndexFile) }

// Init creates a registry directory with an empty, signed index.
func Init(dir, name string, o Options) (*index.Index, error) {
	if len(o.RootKey) != ed25519.PrivateKeySize {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "rootKey", "an ed25519 root key is required")
	}
	if _, err := os.Stat(indexPath(dir)); err == nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "dir", dir+" already holds a registry")
	}
	if err := os.MkdirAll(filepath.Join(dir, "artifacts"), 0o755); err != nil {
		return nil, fmt.Errorf("init registry: %w", err)
	}
	ix := &index.Index{FormatVersion: index.FormatVersion, Name: name, Version: 0,
		Publishers: []index.Publisher{}, Plugins: []index.Plugin{}}
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("init registry: %w", err)
	}
	return ix, nil
}

// load reads the registry's index and checks it as a client would (but
// for its expiry: an expired index must be re-signable), from the root it
// records (its root chain) or, for an index without one, o.RootKey. So a
// tampered index on disk is never re-signed. With o.RootKey, the key must
// be the current root; without it, o.IndexKey must be a publisher
// delegated to sign the index.
func load(dir string, o Options) (*index.Index, *index.Trust, error) {
	if o.RootKey == nil && o.IndexKey == nil {
		return nil, nil, registry.Errorf(registry.ErrInvalidArgument, "rootKey", "an ed25519 root key (or a publisher key delegated to sign the index) is required")
	}
	for _, k := range append(o.rootKeys(), o.IndexKey) {
		if k != nil && len(k) != ed25519.PrivateKeySize {
			return nil, nil, registry.Errorf(registry.ErrInvalidArgument, "rootKey", "not an ed25519 private key")
		}
	}
	data, err := os.ReadFile(indexPath(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("read registry index: %w", err)
	}
	ix, err := index.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	var roots index.Roots
	var rootV int64
	switch cur := ix.CurrentRoot(); {
	case cur != nil:
		roots, rootV = cur.Roots(), cur.Version
	case o.RootKey != nil:
		roots = index.Roots{Keys: []ed25519.PublicKey{o.RootKey.Public().(ed25519.PublicKey)}}
	default:
		return nil, nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "rootKey",
			Detail: "the index does not record its root's public key, so a publisher key alone cannot check it",
			Hint:   "pass --root-key once, or ask the root key holder to delegate with --index (which records it)"}
	}
	if o.RootKey != nil {
		pub := o.RootKey.Public().(ed25519.PublicKey)
		if !slices.ContainsFunc(roots.Keys, func(k ed25519.PublicKey) bool { return k.Equal(pub) }) {
			return nil, nil, &registry.Error{Kind: registry.ErrSignature, Field: "rootKey",
				Detail: "key " + sign.KeyID(pub) + " is not the registry's current root key",
				Hint:   "after a root rotation, sign with the new root key"}
		}
	}
	trust, err := ix.VerifyWith(index.VerifyOptions{Roots: roots, RootVersion: rootV, Now: o.now(), IgnoreExpiry: true})
	if err != nil {
		return nil, nil, fmt.Errorf("refusing to re-sign %s: %w", indexPath(dir), err)
	}
	if o.RootKey == nil {
		if err := trust.CanSignIndex(sign.KeyID(o.IndexKey.Public().(ed25519.PublicKey))); err != nil {
			return nil, nil, err
		}
	}
	return ix, trust, nil
}

// save bumps the version, refreshes the expiry, signs and writes the index
// as a signed envelope (format 2: clients check its signatures over the
// raw bytes before decoding it). An index in format 1 is converted at its
// first save; a client that has read the envelope refuses format 1 from
// the registry afterwards.
func save(dir string, ix *index.Index, o Options) error {
	ix.UseEnvelope()
	ix.Version++
	ix.Expires = o.now().Add(o.validity()).Truncate(time.Second).Format(time.RFC3339)
	if ix.Publishers == nil {
		ix.Publishers = []index.Publisher{}
	}
	signers := o.rootKeys()
	if signers == nil {
		signers = []ed25519.PrivateKey{o.IndexKey}
	}
	if err := ix.SignRoot(signers...); err != nil {
		return err
	}
	data, err := ix.Marshal()
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(indexPath(dir), data, 0o644)
}

// needRoot refuses an operation only the root may do.
func needRoot(o Options, what string) error {
	if o.RootKey == nil {
		return registry.Errorf(registry.ErrInvalidArgument, "rootKey", what+" needs the root key")
	}
	return nil
}

// recordRoot writes root version 1 (the current root keys, signed by
// themselves) into an index that has no root chain yet, so publishers and
// later root versions can find the root's public key in the index.
// Clients never take trust from it: they start from the key they pinned.
func recordRoot(ix *index.Index, o Options) error {
	if len(ix.RootChain) > 0 || o.RootKey == nil {
		return nil
	}
	keys := o.rootKeys()
	l := index.RootLink{Version: 1, Threshold: len(keys)}
	for _, k := range keys {
		l.Keys = append(l.Keys, sign.EncodePublicKey(k.Public().(ed25519.PublicKey)))
	}
	for _, k := range keys {
		if err := index.SignRootLink(k, ix.Name, &l); err != nil {
			return err
		}
	}
	ix.RootChain = []index.RootLink{l}
	return nil
}

// Resign refreshes the expiry of the index (bumping its version), as an
// operator does on a schedule so clients never see it expire.
func Resign(dir string, o Options) (*index.Index, error) {
	ix, _, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("re-sign registry: %w", err)
	}
	return ix, nil
}

// AddPublisher delegates signing of plugins matching patterns (such as
// "engine-*") to the publisher key pub until expires, replacing any earlier
// delegation of that key.
func AddPublisher(dir string, pub ed25519.PublicKey, patterns []string, expires time.Time, o Options) (*index.Index, error) {
	return Delegate(dir, Delegation{PublicKey: pub, Plugins: patterns, Expires: expires}, o)
}

// Delegation is what the root grants a publisher key.
type Delegation struct {
	PublicKey ed25519.PublicKey
	// Plugins are the name patterns the key may sign.
	Plugins []string
	Expires time.Time
	// Index lets the key sign the index too, so it can publish with the
	// root key offline.
	Index bool
}

// Delegate records a delegation signed by the root key (replacing any
// earlier one of the same key). The root does this once, offline; with
// Index, the publisher then publishes with its own key alone.
func Delegate(dir string, d Delegation, o Options) (*index.Index, error) {
	if len(d.PublicKey) != ed25519.PublicKeySize {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "publicKey", "not an ed25519 public key")
	}
	if err := needRoot(o, "a delegation"); err != nil {
		return nil, err
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	id := sign.KeyID(d.PublicKey)
	if why, ok := trust.Revoked[id]; ok {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "publicKey",
			Detail: "key " + id + " was revoked (" + why + "); a revoked key is never delegated again", Hint: "generate a new key"}
	}
	p := index.Publisher{KeyID: id, PublicKey: sign.EncodePublicKey(d.PublicKey),
		Plugins: slices.Clone(d.Plugins), Expires: d.Expires.UTC().Truncate(time.Second).Format(time.RFC3339), Index: d.Index}
	for _, k := range o.rootKeys() {
		if err := index.SignDelegation(k, ix.Name, &p); err != nil {
			return nil, err
		}
	}
	ix.Publishers = slices.DeleteFunc(ix.Publishers, func(x index.Publisher) bool { return x.KeyID == p.KeyID })
	ix.Publishers = append(ix.Publishers, p)
	if d.Index {
		if err := recordRoot(ix, o); err != nil {
			return nil, err
		}
	}
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("add publisher %s: %w", p.KeyID, err)
	}
	return ix, nil
}

// PublishRequest describes one binary to publish.
type PublishRequest struct {
	// Binary is the plugin executable.
	Binary string
	// Name and Version must match the manifest; empty takes them from it.
	Name, Version string
	// OS and Arch default to the running platform.
	OS, Arch string
	// License is an SPDX expression; required for a new plugin.
	License string
	// Description and Homepage override the manifest / existing entry.
	Description, Homepage string
	// Official marks the plugin official (first-party).
	Official bool
	// Core is the compatible core versions constraint, e.g. ">=0.1.0".
	Core string
	// Advisory is an optional notice shown to users installing this version.
	Advisory string
	// Manifest is used instead of running Binary --describe; needed when
	// publishing a binary built for another platform.
	Manifest *manifest.Manifest
	// DescribeTimeout bounds --describe (0: manifest.DefaultTimeout).
	DescribeTimeout time.Duration
	// PublisherKey signs the artifact; its key must be delegated for Name.
	PublisherKey ed25519.PrivateKey
	// RootDelegation, when PublisherKey is o.RootKey itself (a small
	// registry with one key), delegates every plugin name to it for this
	// long first (EnsureSelfDelegation). Zero: no delegation is made.
	RootDelegation time.Duration
	// BaseURL, when set, makes the index point at BaseURL/NAME_OS_ARCH for
	// the published artifact instead of the copy in the folder
	// (PointArtifactAt), for artifacts hosted elsewhere.
	BaseURL string
}

// Publish copies a binary into the registry as
// artifacts/NAME/VERSION/NAME_OS_ARCH, records its size and sha256, signs
// it with the publisher key and re-signs the index. A published artifact
// is immutable: publishing the same name, version and platform twice is
// refused. See PublishRequest.RootDelegation and BaseURL for the steps
// around it.
func Publish(ctx context.Context, dir string, req PublishRequest, o Options) (*index.Index, error) {
	if req.BaseURL != "" && !strings.HasPrefix(req.BaseURL, "https://") && !strings.HasPrefix(req.BaseURL, "http://") {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "baseURL", fmt.Sprintf("%q must be an http(s) URL", req.BaseURL))
	}
	if req.RootDelegation > 0 && len(req.PublisherKey) == ed25519.PrivateKeySize && o.RootKey != nil {
		if pub := req.PublisherKey.Public().(ed25519.PublicKey); pub.Equal(o.RootKey.Public()) {
			if err := EnsureSelfDelegation(dir, pub, req.RootDelegation, o); err != nil {
				return nil, err
			}
		}
	}
	// publishArtifact fills in the name, version and platform.
	ix, err := publishArtifact(ctx, dir, &req, o)
	if err != nil || req.BaseURL == "" {
		return ix, err
	}
	return PointArtifactAt(dir, req, req.BaseURL, o)
}

// publishArtifact is Publish's own step: copy, sign, re-sign the index.
func publishArtifact(ctx context.Context, dir string, req *PublishRequest, o Options) (*index.Index, error) {
	if req.OS == "" {
		req.OS = runtime.GOOS
	}
	if req.Arch == "" {
		req.Arch = runtime.GOARCH
	}
	if len(req.PublisherKey) != ed25519.PrivateKeySize {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "publisherKey", "an ed25519 publisher key is required")
	}
	m := req.Manifest
	if m == nil {
		if req.OS != runtime.GOOS || req.Arch != runtime.GOARCH {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest",
				fmt.Sprintf("cannot run a %s/%s binary here to read its manifest; pass the manifest", req.OS, req.Arch))
		}
		var err error
		if m, err = manifest.Read(ctx, req.Binary, req.DescribeTimeout); err != nil {
			return nil, fmt.Errorf("publish %s: %w", req.Binary, err)
		}
	}
	if req.Name == "" {
		req.Name = m.Name
	}
	if req.Version == "" {
		req.Version = m.Version
	}
	if m.Name != req.Name {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "name", fmt.Sprintf("the binary says it is %q, not %q", m.Name, req.Name))
	}
	if m.Version != req.Version {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "version", fmt.Sprintf("the binary says it is version %q, not %q", m.Version, req.Version))
	}
	if !index.ValidPluginName(req.Name) {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "name", "must be lowercase letters and digits separated by '-'")
	}
	if _, err := semver.StrictNewVersion(req.Version); err != nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "version", "must be a semantic version such as 1.2.3")
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	pubID := sign.KeyID(req.PublisherKey.Public().(ed25519.PublicKey))
	// Never sign outside the delegation: clients would refuse the
	// artifact, and an export of the registry would fail on it.
	if err := trust.CanSign(pubID, req.Name); err != nil {
		return nil, err
	}

	plugin := ix.Lookup(req.Name)
	if plugin == nil {
		if req.License == "" {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "license", "a new plugin needs a license (SPDX id)")
		}
		ix.Plugins = append(ix.Plugins, index.Plugin{Name: req.Name})
		plugin = &ix.Plugins[len(ix.Plugins)-1]
	}
	plugin.Categories = slices.Clone(m.Categories)
	if req.License != "" {
		plugin.License = req.License
	}
	if req.Description != "" {
		plugin.Description = req.Description
	} else if plugin.Description == "" {
		plugin.Description = m.Description
	}
	if req.Homepage != "" {
		plugin.Homepage = req.Homepage
	}
	plugin.Official = plugin.Official || req.Official

	var ver *index.Version
	for i := range plugin.Versions {
		if plugin.Versions[i].Version == req.Version {
			ver = &plugin.Versions[i]
		}
	}
	if ver == nil {
		plugin.Versions = append(plugin.Versions, index.Version{Version: req.Version, ProtocolVersions: slices.Clone(m.ProtocolVersions)})
		ver = &plugin.Versions[len(plugin.Versions)-1]
	} else if !slices.Equal(ver.ProtocolVersions, m.ProtocolVersions) {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "protocolVersions",
			"this binary speaks other protocol versions than the builds already published for "+req.Version)
	}
	if req.Core != "" {
		ver.Core = req.Core
	}
	if req.Advisory != "" {
		ver.Advisory = req.Advisory
	}
	for i := range ver.Artifacts {
		a := &ver.Artifacts[i]
		if a.OS != req.OS || a.Arch != req.Arch {
			continue
		}
		// The same bytes again: sign them with this key (after a key was
		// revoked, or to add a second publisher). Other bytes: refused.
		sum, size, err := hashFile(req.Binary)
		if err != nil {
			return nil, fmt.Errorf("publish %s@%s: %w", req.Name, req.Version, err)
		}
		if sum != a.SHA256 || size != a.Size {
			return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Plugin: req.Name, Version: req.Version,
				Detail: req.OS + "/" + req.Arch + " is already published with other bytes; published artifacts never change",
				Hint:   "publish a new version"}
		}
		if slices.ContainsFunc(a.Signatures, func(s index.Signature) bool { return s.KeyID == pubID }) {
			return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Plugin: req.Name, Version: req.Version,
				Detail: req.OS + "/" + req.Arch + " is already published and signed by key " + pubID + "; published artifacts never change",
				Hint:   "publish a new version"}
		}
		if err := index.SignArtifact(req.PublisherKey, req.Name, ver, a); err != nil {
			return nil, err
		}
		if err := save(dir, ix, o); err != nil {
			return nil, fmt.Errorf("publish %s@%s: %w", req.Name, req.Version, err)
		}
		return ix, nil
	}

	rel := fmt.Sprintf("artifacts/%s/%s/%s_%s_%s", req.Name, req.Version, req.Name, req.OS, req.Arch)
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	sum, size, err := copyArtifact(req.Binary, dst)
	if err != nil {
		return nil, fmt.Errorf("publish %s@%s: %w", req.Name, req.Version, err)
	}
	ver.Artifacts = append(ver.Artifacts, index.Artifact{OS: req.OS, Arch: req.Arch, URL: rel, Size: size, SHA256: sum})
	art := &ver.Artifacts[len(ver.Artifacts)-1]
	if err := index.SignArtifact(req.PublisherKey, req.Name, ver, art); err != nil {
		os.Remove(dst)
		return nil, err
	}
	if err := save(dir, ix, o); err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("publish %s@%s: %w", req.Name, req.Version, err)
	}
	return ix, nil
}

// copyArtifact copies src to dst (which must not exist) atomically and
// returns its sha256 and size.
func copyArtifact(src, dst string) (string, int64, error) {
	if _, err := os.Lstat(dst); err == nil {
		return "", 0, registry.Errorf(registry.ErrInvalidArgument, dst, "already exists; published artifacts never change")
	}
	in, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("open binary: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, fmt.Errorf("create artifact directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("create artifact: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("copy artifact: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Yank marks a version withdrawn with a reason. Clients skip it in range
// resolution and refuse it unless pinned exactly with allow-yanked.
func Yank(dir, name, version, reason string, o Options) (*index.Index, error) {
	if reason == "" {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "reason", "say why the version is yanked")
	}
	ix, trust, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	if o.RootKey == nil {
		// A publisher signing the index yanks only what it may sign.
		if err := trust.CanSign(sign.KeyID(o.IndexKey.Public().(ed25519.PublicKey)), name); err != nil {
			return nil, err
		}
	}
	p := ix.Lookup(name)
	if p == nil {
		return nil, &registry.Error{Kind: registry.ErrNotFound, Plugin: name, Detail: "not in this registry"}
	}
	i := slices.IndexFunc(p.Versions, func(v index.Version) bool { return v.Version == version })
	if i < 0 {
		return nil, &registry.Error{Kind: registry.ErrNotFound, Plugin: name, Version: version, Detail: "no such version in this registry"}
	}
	p.Versions[i].Yanked = &index.Yanked{Reason: reason}
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("yank %s@%s: %w", name, version, err)
	}
	return ix, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read binary: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
