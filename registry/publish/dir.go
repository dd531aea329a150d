package publish

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/sign"
)

// ReadIndex reads and parses the index of the registry folder dir without
// verifying it (for what is only shown, such as the banner of `registry
// serve`; every operation that re-signs verifies it first).
func ReadIndex(dir string) (*index.Index, error) {
	data, err := os.ReadFile(indexPath(dir))
	if err != nil {
		return nil, fmt.Errorf("read registry %s: %w (create it with palvella registry init)", dir, err)
	}
	return index.Parse(data)
}

// IsRoot reports whether pub is a current root key of the registry in dir:
// one of the keys of the newest root version its index records, or, for
// an index without a root chain, a key whose signature on the index
// verifies.
func IsRoot(dir string, pub ed25519.PublicKey) bool {
	ix, err := ReadIndex(dir)
	if err != nil {
		return false
	}
	if cur := ix.CurrentRoot(); cur != nil {
		return slices.ContainsFunc(cur.PublicKeys(), func(k ed25519.PublicKey) bool { return k.Equal(pub) })
	}
	return ix.CheckRootSignatures(index.Roots{Keys: []ed25519.PublicKey{pub}}) == nil
}

// EnsureSelfDelegation delegates every plugin name ("*") to pub, the root
// key acting as its own publisher key (a small registry with one key),
// for validity (at least the index's validity), unless such a delegation
// already lasts longer than the index will.
func EnsureSelfDelegation(dir string, pub ed25519.PublicKey, validity time.Duration, o Options) error {
	ix, err := ReadIndex(dir)
	if err != nil {
		return err
	}
	id := sign.KeyID(pub)
	now := o.now()
	for _, p := range ix.Publishers {
		exp, err := time.Parse(time.RFC3339, p.Expires)
		if p.KeyID == id && slices.Contains(p.Plugins, "*") && err == nil && exp.After(now.Add(o.validity()-time.Hour)) {
			return nil
		}
	}
	validity = max(validity, o.validity())
	if _, err := AddPublisher(dir, pub, []string{"*"}, now.Add(validity).Truncate(time.Second), o); err != nil {
		return fmt.Errorf("delegate to the root key: %w", err)
	}
	return nil
}

// FindArtifact returns the artifact of ix that req published (its name,
// version and platform, from the request or its manifest), or nil.
func FindArtifact(ix *index.Index, req PublishRequest) *index.Artifact {
	name, ver := req.Name, req.Version
	if req.Manifest != nil {
		name, ver = cmpOr(name, req.Manifest.Name), cmpOr(ver, req.Manifest.Version)
	}
	goos, goarch := cmpOr(req.OS, runtime.GOOS), cmpOr(req.Arch, runtime.GOARCH)
	p := ix.Lookup(name)
	if p == nil {
		return nil
	}
	for i := range p.Versions {
		if p.Versions[i].Version != ver {
			continue
		}
		for j := range p.Versions[i].Artifacts {
			if a := &p.Versions[i].Artifacts[j]; a.OS == goos && a.Arch == goarch {
				return a
			}
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// PointArtifactAt makes the artifact req published downloadable from
// baseURL (baseURL/NAME_OS_ARCH) instead of the copy in the folder, and
// re-signs the index. The URL is not covered by the artifact's signature
// (name, version, platform, size and sha256 are), so the publisher's
// signature stays valid; the index signature covers the change. The copy
// in the folder stays, so `registry export` and mirrors can still serve it.
func PointArtifactAt(dir string, req PublishRequest, baseURL string, o Options) (*index.Index, error) {
	ix, _, err := load(dir, o)
	if err != nil {
		return nil, err
	}
	a := FindArtifact(ix, req)
	if a == nil {
		return nil, registry.Errorf(registry.ErrNotFound, "baseURL", "the published artifact is not in "+dir)
	}
	a.URL = strings.TrimSuffix(baseURL, "/") + "/" + path.Base(a.URL)
	if !strings.HasPrefix(baseURL, "https://") && !strings.HasPrefix(baseURL, "http://") {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "baseURL", fmt.Sprintf("%q must be an http(s) URL", baseURL))
	}
	if err := index.ValidURL(a.URL); err != nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "baseURL", err.Error())
	}
	if err := save(dir, ix, o); err != nil {
		return nil, fmt.Errorf("point %s at %s: %w", a.Platform(), baseURL, err)
	}
	return ix, nil
}

// ExportBundleFile is ExportBundle into the file out, written through a
// temporary file next to it and renamed into place only once the bundle is
// complete, so a failed export leaves nothing at out.
func ExportBundleFile(ctx context.Context, location, out string, o VerifyOptions) (*Report, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	rep, err := ExportBundle(ctx, location, f, o)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("write bundle %s: %w", out, err)
	}
	return rep, nil
}
