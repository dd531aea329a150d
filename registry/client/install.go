package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/archive"
	"github.com/palvella/palvella/registry/internal/fsutil"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/manifest"
	"github.com/palvella/palvella/registry/resolve"
)

// MaxArchiveExpansion bounds what an archive artifact may unpack to.
const MaxArchiveExpansion = 2 << 30

func compareVersions(a, b string) (int, error) {
	va, err := semver.NewVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := semver.NewVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// installSelection downloads, verifies and installs sel, then records it.
func (c *Client) installSelection(ctx context.Context, src Source, sel *resolve.Selection, constraint string) (*Result, error) {
	name, version := sel.Plugin.Name, sel.Version.Version
	art := sel.Artifact
	if err := os.MkdirAll(c.PluginDir, 0o755); err != nil {
		return nil, fmt.Errorf("create plugin directory: %w", err)
	}
	// Work in a temporary directory inside PluginDir: same filesystem, so
	// the final step is a rename, and nothing appears under NAME/ unless
	// every check passed.
	work, err := os.MkdirTemp(c.PluginDir, ".install-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(work)

	dl := filepath.Join(work, "download")
	if err := c.Download(ctx, src, name, version, art, dl); err != nil {
		return nil, err
	}
	pkg := filepath.Join(work, "pkg")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		return nil, fmt.Errorf("create package directory: %w", err)
	}
	bin := filepath.Join(pkg, name)
	installedSum := art.SHA256
	if art.IsArchive() {
		entry := art.EntryName(name)
		f, err := os.Open(dl)
		if err != nil {
			return nil, fmt.Errorf("open download: %w", err)
		}
		err = archive.Extract(f, pkg, archive.Limits{MaxFiles: 10000, MaxBytes: MaxArchiveExpansion})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("unpack artifact: %w", withPlugin(err, name, version))
		}
		clean, err := archive.SafeName(entry)
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(pkg, filepath.FromSlash(clean))
		st, err := os.Lstat(bin)
		if err != nil || !st.Mode().IsRegular() {
			return nil, &registry.Error{Kind: registry.ErrNotFound, Plugin: name, Version: version,
				Detail: "archive has no executable " + entry, Hint: "report it to the publisher"}
		}
		if installedSum, _, err = fsutil.HashFile(bin); err != nil {
			return nil, fmt.Errorf("hash executable: %w", err)
		}
	} else if err := os.Rename(dl, bin); err != nil {
		return nil, fmt.Errorf("move download: %w", err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return nil, fmt.Errorf("make executable: %w", err)
	}
	rel, _ := filepath.Rel(pkg, bin)
	arts := map[string]string{}
	for _, a := range sel.Version.Artifacts {
		arts[a.Platform()] = a.SHA256
	}
	entry := lock.Entry{
		Name: name, Version: version, Constraint: constraint, Source: lock.SourceRegistry, Registry: sel.Registry,
		Categories: slices.Clone(sel.Plugin.Categories), ProtocolVersions: slices.Clone(sel.Version.ProtocolVersions),
		Path:   filepath.Join(c.PluginDir, name, version, rel),
		SHA256: installedSum, Artifacts: arts, SignedBy: sel.SignedBy, Unpacked: art.IsArchive(),
	}
	prev, err := c.commit(work, pkg, entry)
	if err != nil {
		return nil, err
	}
	return &Result{Entry: entry, Selection: sel, Notices: sel.Notices, Previous: prev}, nil
}

// commit moves the verified package pkg into PluginDir/NAME/VERSION,
// records entry in the lock, and removes the version it replaces. On any
// failure the previous installation and lock are left as they were.
func (c *Client) commit(work, pkg string, entry lock.Entry) (previous string, err error) {
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return "", err
	}
	var old *lock.Entry
	if e := lf.Get(entry.Name); e != nil {
		cp := *e
		old = &cp
	}
	base := filepath.Join(c.PluginDir, entry.Name)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create plugin directory: %w", err)
	}
	final := filepath.Join(base, entry.Version)
	aside := filepath.Join(work, "previous")
	hadFinal := false
	if _, err := os.Lstat(final); err == nil {
		if err := os.Rename(final, aside); err != nil {
			return "", fmt.Errorf("move aside existing %s: %w", final, err)
		}
		hadFinal = true
	}
	undo := func() {
		os.RemoveAll(final)
		if hadFinal {
			os.Rename(aside, final)
		}
		if old == nil {
			os.Remove(base) // only if empty
		}
	}
	if err := os.Rename(pkg, final); err != nil {
		undo()
		return "", fmt.Errorf("install into %s: %w", final, err)
	}
	lf.Put(entry)
	if err := lf.Save(c.LockPath); err != nil {
		undo()
		return "", err
	}
	if old != nil && old.Version != entry.Version {
		previous = old.Version
		if dir := filepath.Join(base, old.Version); filepath.Dir(dir) == base && !c.KeepReplaced {
			os.RemoveAll(dir)
		}
	}
	return previous, nil
}

func withPlugin(err error, name, version string) error {
	var re *registry.Error
	if errors.As(err, &re) && re.Plugin == "" {
		cp := *re
		cp.Plugin, cp.Version = name, version
		return &cp
	}
	return err
}

// Download fetches artifact a from src into the file dst (which must not
// exist) through Fetch. On any refusal dst is removed.
func (c *Client) Download(ctx context.Context, src Source, name, version string, a *index.Artifact, dst string) (err error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create download file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write download: %w", cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	pw := &progressWriter{fn: c.OnProgress, p: Progress{Plugin: name, Version: version, Total: a.Size}}
	if err := Fetch(ctx, src, name, version, a, io.MultiWriter(f, pw)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write download: %w", err)
	}
	return nil
}

// Fetch streams artifact a from src into w while hashing it, and refuses it
// if it is larger than declared (stopping at the first byte too many),
// shorter than declared, or its sha256 differs. The caller must discard
// what was written to w when Fetch fails.
func Fetch(ctx context.Context, src Source, name, version string, a *index.Artifact, w io.Writer) error {
	fail := func(kind error, detail string) error {
		return &registry.Error{Kind: kind, Plugin: name, Version: version, Field: a.URL, Detail: detail,
			Hint: "the download was discarded; retry, and report it to the registry operator if it persists"}
	}
	rc, announced, err := src.Open(ctx, a)
	if err != nil {
		return fmt.Errorf("download %s: %w", a.URL, withPlugin(err, name, version))
	}
	defer rc.Close()
	if announced > a.Size {
		return fail(registry.ErrSize, fmt.Sprintf("source announces %d bytes, the index declares %d", announced, a.Size))
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, a.Size+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", a.URL, ctx.Err())
		}
		if n < a.Size {
			return fail(registry.ErrSize, fmt.Sprintf("transfer broke off after %d of %d bytes: %v", n, a.Size, err))
		}
		return fmt.Errorf("download %s: %w", a.URL, err)
	}
	if n > a.Size {
		return fail(registry.ErrSize, fmt.Sprintf("larger than the %d bytes the index declares", a.Size))
	}
	if n < a.Size {
		return fail(registry.ErrSize, fmt.Sprintf("got %d of the %d bytes the index declares (truncated)", n, a.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return fail(registry.ErrChecksum, fmt.Sprintf("sha256 is %s, the signed index says %s", got, a.SHA256))
	}
	return nil
}

type progressWriter struct {
	fn func(Progress)
	p  Progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	if w.fn != nil {
		w.p.Done += int64(len(b))
		w.fn(w.p)
	}
	return len(b), nil
}

// LocalRequest installs a plugin binary from a file.
type LocalRequest struct {
	// Path of the binary.
	Path string
	// AllowUnsigned must be true: a local binary carries no signature.
	AllowUnsigned bool
	// DescribeTimeout bounds `--describe` (0: manifest.DefaultTimeout).
	DescribeTimeout time.Duration
	// Replace allows replacing a builtin plugin or a plugin installed from
	// a registry.
	Replace bool
}

// InstallLocal installs a binary from a file, reading its manifest with
// --describe, and records it in the lock with source "local" and the
// sha256 of the file.
func (c *Client) InstallLocal(ctx context.Context, req LocalRequest) (*Result, error) {
	if err := c.checkDirs(); err != nil {
		return nil, err
	}
	if !req.AllowUnsigned {
		return nil, &registry.Error{Kind: registry.ErrSignature, Field: req.Path,
			Detail: "a local binary is not signed", Hint: "pass allow-unsigned if you trust this file"}
	}
	st, err := os.Stat(req.Path)
	if err != nil {
		return nil, fmt.Errorf("install local plugin: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, registry.Errorf(registry.ErrInvalidArgument, req.Path, "is not a regular file")
	}
	if err := os.MkdirAll(c.PluginDir, 0o755); err != nil {
		return nil, fmt.Errorf("create plugin directory: %w", err)
	}
	work, err := os.MkdirTemp(c.PluginDir, ".install-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(work)
	// Copy first, then describe and hash the copy: what is checked is what
	// gets installed, even if the original changes meanwhile.
	pkg := filepath.Join(work, "pkg")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		return nil, fmt.Errorf("create package directory: %w", err)
	}
	tmpBin := filepath.Join(pkg, "plugin")
	if err := copyFile(req.Path, tmpBin, 0o755); err != nil {
		return nil, fmt.Errorf("install local plugin: %w", err)
	}
	m, err := manifest.Read(ctx, tmpBin, req.DescribeTimeout)
	if err != nil {
		return nil, fmt.Errorf("read its manifest: %w", err)
	}
	if _, err := semver.StrictNewVersion(m.Version); err != nil {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.version", "is not a semantic version")
	}
	if !index.ValidPluginName(m.Name) {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.name", "is not a valid plugin name")
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return nil, err
	}
	if err := c.checkReplace(lf, m.Name, lock.SourceLocal, "", req.Replace); err != nil {
		return nil, err
	}
	bin := filepath.Join(pkg, m.Name)
	if err := os.Rename(tmpBin, bin); err != nil {
		return nil, fmt.Errorf("install local plugin: %w", err)
	}
	sum, _, err := fsutil.HashFile(bin)
	if err != nil {
		return nil, fmt.Errorf("hash local plugin: %w", err)
	}
	entry := lock.Entry{
		Name: m.Name, Version: m.Version, Source: lock.SourceLocal,
		Categories: m.Categories, ProtocolVersions: m.ProtocolVersions,
		Path: filepath.Join(c.PluginDir, m.Name, m.Version, m.Name), SHA256: sum,
	}
	prev, err := c.commit(work, pkg, entry)
	if err != nil {
		return nil, err
	}
	return &Result{Entry: entry, Previous: prev}, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
