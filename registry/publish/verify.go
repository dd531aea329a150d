package publish

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/archive"
)

// Report is what Verify found.
type Report struct {
	Registry  string
	Version   int64
	Expires   string
	Plugins   int
	Artifacts int
	// Problems lists every artifact that failed; empty when all is well.
	Problems []error
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// RootKeys are the root public keys to check against (never the index's own).
	RootKeys []ed25519.PublicKey
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
	// HTTPClient for URL locations (nil: client.NewHTTPClient's, with its
	// connect, idle and progress-aware timeouts).
	HTTPClient *http.Client
	// SkipDownload checks the index, its delegations and every artifact's
	// signature, but downloads no artifact (for an index whose artifacts
	// are hosted elsewhere).
	SkipDownload bool
}

func (o *VerifyOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Verify checks a registry (a directory, an index file or a URL) against
// the given root keys: the index signature and expiry, every delegation,
// and every artifact's signature, size and sha256 (each artifact is
// downloaded and hashed, unless o.SkipDownload). The returned error joins
// every problem.
func Verify(ctx context.Context, location string, o VerifyOptions) (*Report, error) {
	src, err := client.NewSource(location, o.HTTPClient)
	if err != nil {
		return nil, err
	}
	_, ix, trust, err := loadVerified(ctx, src, o)
	if err != nil {
		return nil, err
	}
	now := o.now()
	rep := &Report{Registry: ix.Name, Version: ix.Version, Expires: ix.Expires, Plugins: len(ix.Plugins)}
	err = eachArtifact(ix, func(p *index.Plugin, v *index.Version, a *index.Artifact) error {
		rep.Artifacts++
		if _, err := trust.VerifyArtifact(p.Name, v, a, now); err != nil {
			rep.Problems = append(rep.Problems, err)
			return nil
		}
		if o.SkipDownload {
			return nil
		}
		if err := client.Fetch(ctx, src, p.Name, v.Version, a, io.Discard); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Problems = append(rep.Problems, err)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	return rep, errors.Join(rep.Problems...)
}

// loadVerified reads the index of src and verifies it against o.RootKeys
// before it parses it (index.Open: an envelope's signatures are checked
// over its raw bytes first). It returns the raw bytes too.
func loadVerified(ctx context.Context, src client.Source, o VerifyOptions) ([]byte, *index.Index, *index.Trust, error) {
	data, err := src.Index(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ix, trust, err := index.Open(data, index.VerifyOptions{Roots: index.Roots{Keys: o.RootKeys}, Now: o.now()})
	if err != nil {
		return nil, nil, nil, err
	}
	return data, ix, trust, nil
}

func eachArtifact(ix *index.Index, fn func(*index.Plugin, *index.Version, *index.Artifact) error) error {
	for i := range ix.Plugins {
		p := &ix.Plugins[i]
		for j := range p.Versions {
			v := &p.Versions[j]
			for k := range v.Artifacts {
				if err := fn(p, v, &v.Artifacts[k]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// bundlePath is where an artifact lives inside a bundle (and in the folder
// it is imported into): its relative URL, or the content-addressed mirror
// path for an absolute URL.
func bundlePath(a *index.Artifact) string {
	if index.SafeRelPath(a.URL) {
		return a.URL
	}
	return client.MirrorPath(a.SHA256)
}

// ExportBundle verifies the registry at location and writes an offline
// bundle (tar.gz of index.json and every artifact) to w. Artifacts with
// absolute URLs are stored under blobs/sha256/HEX, where a folder source
// looks for them. The index is copied byte for byte, signatures intact.
func ExportBundle(ctx context.Context, location string, w io.Writer, o VerifyOptions) (*Report, error) {
	src, err := client.NewSource(location, o.HTTPClient)
	if err != nil {
		return nil, err
	}
	data, ix, trust, err := loadVerified(ctx, src, o)
	if err != nil {
		return nil, err
	}
	now := o.now()
	tmp, err := os.MkdirTemp("", "palvella-bundle-")
	if err != nil {
		return nil, fmt.Errorf("export bundle: %w", err)
	}
	defer os.RemoveAll(tmp)
	aw := archive.NewWriter(w)
	if err := aw.AddBytes(client.IndexFile, data, 0o644); err != nil {
		return nil, err
	}
	rep := &Report{Registry: ix.Name, Version: ix.Version, Expires: ix.Expires, Plugins: len(ix.Plugins)}
	added := map[string]bool{}
	err = eachArtifact(ix, func(p *index.Plugin, v *index.Version, a *index.Artifact) error {
		rep.Artifacts++
		if _, err := trust.VerifyArtifact(p.Name, v, a, now); err != nil {
			return err
		}
		name := bundlePath(a)
		if added[name] {
			return nil
		}
		f, err := os.CreateTemp(tmp, "artifact-")
		if err != nil {
			return err
		}
		ferr := client.Fetch(ctx, src, p.Name, v.Version, a, f)
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
		if ferr != nil {
			return ferr
		}
		added[name] = true
		err = aw.AddFile(name, f.Name(), 0o644)
		os.Remove(f.Name())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("export bundle of %s: %w", ix.Name, err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("export bundle: %w", err)
	}
	return rep, nil
}

// MaxBundleExpansion bounds what a bundle may unpack to.
const MaxBundleExpansion = 64 << 30

// ImportBundle unpacks a bundle into dest (which must not exist), refusing
// entries that would escape it, and verifies the result before it appears
// at dest. The folder can then be configured as a registry location.
func ImportBundle(ctx context.Context, bundle io.Reader, dest string, o VerifyOptions) (*Report, error) {
	if _, err := os.Lstat(dest); err == nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "dest", dest+" already exists")
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".import-")
	if err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := archive.Extract(bundle, tmp, archive.Limits{MaxFiles: 1 << 20, MaxBytes: MaxBundleExpansion}); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	rep, err := Verify(ctx, tmp, o)
	if err != nil {
		return rep, fmt.Errorf("import bundle: %w", err)
	}
	// Keep only what the verified index references: a bundle may carry
	// other files (a key, a script), and the folder may be served as is.
	if err := pruneUnreferenced(tmp); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	ok = true
	return rep, nil
}

// Referenced returns the paths, relative to a registry folder, of the files
// ix references: index.json, the artifacts with relative URLs, and
// blobs/sha256/HEX for those with absolute URLs.
func Referenced(ix *index.Index) map[string]bool {
	out := map[string]bool{client.IndexFile: true}
	for _, p := range ix.Plugins {
		for _, v := range p.Versions {
			for _, a := range v.Artifacts {
				if strings.Contains(a.URL, "://") {
					out[client.MirrorPath(a.SHA256)] = true
				} else if index.SafeRelPath(a.URL) {
					out[path.Clean(a.URL)] = true
				}
			}
		}
	}
	return out
}

// pruneUnreferenced deletes every file under dir that its index does not
// reference, then the directories left empty.
func pruneUnreferenced(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, client.IndexFile))
	if err != nil {
		return err
	}
	ix, err := index.Parse(data)
	if err != nil {
		return err
	}
	keep := Referenced(ix)
	var dirs []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." {
				dirs = append(dirs, p)
			}
			return nil
		}
		if !keep[rel] {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i]) // only if empty
	}
	return nil
}
