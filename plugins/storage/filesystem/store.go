package filesystem

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// The folders under the root.
const (
	objectsDir = "objects"
	sumsDir    = "sums"
	tmpDir     = "tmp"
)

// store is an open root folder. Every path it touches is relative to root
// and goes through it.
type store struct {
	root *os.Root
}

func openStore(ctx context.Context, dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open storage folder: %w", err)
	}
	for _, d := range []string{objectsDir, sumsDir, tmpDir} {
		if err := root.MkdirAll(d, 0o700); err != nil {
			_ = root.Close() // the mkdir error says more
			return nil, fmt.Errorf("create %s in the storage folder: %w", d, err)
		}
	}
	s := &store{root: root}
	if err := s.removeStaleTemp(ctx, time.Now().Add(-staleTemp)); err != nil {
		_ = root.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.root.Close() }

// removeStaleTemp removes temporary files of Puts that never finished.
func (s *store) removeStaleTemp(ctx context.Context, before time.Time) error {
	entries, err := fs.ReadDir(s.root.FS(), tmpDir)
	if err != nil {
		return fmt.Errorf("read %s: %w", tmpDir, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(before) {
			continue // gone meanwhile, not ours, or recent
		}
		if err := s.root.Remove(path.Join(tmpDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale temporary file: %w", err)
		}
	}
	return nil
}

// kindDir names a scope kind's folder.
func kindDir(k storage.ScopeKind) string { return k.String() }

// scopeDir is the folder of a validated scope, relative to the root.
func scopeDir(s storage.Scope) string {
	return path.Join(append([]string{objectsDir, kindDir(s.Kind)}, s.Parts()...)...)
}

// objectPaths validates ref and returns the paths of its data and of its
// checksum, relative to the root. Nothing else builds paths from input.
func objectPaths(ref storage.ObjectRef) (data, sum string, err error) {
	if err := ref.Validate(); err != nil {
		return "", "", err
	}
	data = scopeDir(ref.Scope) + "/" + ref.Key
	return data, sumsDir + strings.TrimPrefix(data, objectsDir), nil
}

// sidecar is what the sums tree holds about an object. It is trusted only
// while the object's size and modification time match it.
type sidecar struct {
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime"`
	SHA256 string `json:"sha256"`
}

func notFound(ref storage.ObjectRef) error {
	return sdk.Errorf(sdk.ErrNotFound, "key", "no object %q in this %s scope", ref.Key, ref.Scope.Kind)
}

// isMissing reports whether err says a path, or a folder on it, is absent.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// isConflict reports whether err says a key runs into an object where a
// folder is needed, or the reverse.
func isConflict(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY)
}

func conflict(ref storage.ObjectRef) error {
	return sdk.Errorf(sdk.ErrFailedPrecondition, "key", "%q runs into another object of the scope: one key cannot be both an object and a folder of others", ref.Key)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomName() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func (s *store) put(ctx context.Context, ref storage.ObjectRef, r io.Reader) (*storage.ObjectInfo, error) {
	data, sum, err := objectPaths(ref)
	if err != nil {
		return nil, err
	}
	tmp := path.Join(tmpDir, randomName()+".part")
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("put %q: create temporary file: %w", ref.Key, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.root.Remove(tmp) // nothing of a failed Put may remain
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("put %q: write data: %w", ref.Key, err)
	}
	fi, err := s.root.Stat(tmp)
	if err != nil {
		return nil, fmt.Errorf("put %q: %w", ref.Key, err)
	}
	meta := sidecar{Size: n, MTime: fi.ModTime().UnixNano(), SHA256: hex.EncodeToString(h.Sum(nil))}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("put %q: %w", ref.Key, err)
	}
	// A Delete of the folder's last object may remove the folder between
	// MkdirAll and Rename; then the rename finds it missing and tries again.
	for attempt := 1; ; attempt++ {
		err := s.place(tmp, data, sum, meta)
		if err == nil {
			break
		}
		if isConflict(err) {
			return nil, conflict(ref)
		}
		if !isMissing(err) || attempt == 3 {
			return nil, fmt.Errorf("put %q: %w", ref.Key, err)
		}
	}
	committed = true
	s.syncDir(path.Dir(data))
	return &storage.ObjectInfo{Ref: ref, Size: n, SHA256: meta.SHA256, ModifiedAt: fi.ModTime().UTC()}, nil
}

// place moves a complete temporary file to its object's path.
func (s *store) place(tmp, data, sum string, meta sidecar) error {
	if err := s.root.MkdirAll(path.Dir(data), 0o700); err != nil {
		return fmt.Errorf("create folders: %w", err)
	}
	// The checksum goes first: if the rename below fails, the sidecar no
	// longer matches whatever is stored and is ignored.
	if err := s.writeSidecar(sum, meta); err != nil {
		return err
	}
	if err := s.root.Rename(tmp, data); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

func (s *store) writeSidecar(sum string, meta sidecar) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode checksum: %w", err)
	}
	if err := s.root.MkdirAll(path.Dir(sum), 0o700); err != nil {
		return fmt.Errorf("create checksum folders: %w", err)
	}
	tmp := path.Join(tmpDir, randomName()+".sum")
	if err := s.root.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write checksum: %w", err)
	}
	if err := s.root.Rename(tmp, sum); err != nil {
		_ = s.root.Remove(tmp)
		return fmt.Errorf("write checksum: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable. It is best effort: the object is
// in place either way.
func (s *store) syncDir(dir string) {
	d, err := s.root.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// checksum returns the object's sha256, from its sidecar when that still
// describes it, else by reading f (which is left at its start).
func (s *store) checksum(sum string, fi fs.FileInfo, f *os.File) (string, error) {
	if b, err := s.root.ReadFile(sum); err == nil {
		var meta sidecar
		if json.Unmarshal(b, &meta) == nil && meta.Size == fi.Size() && meta.MTime == fi.ModTime().UnixNano() && meta.SHA256 != "" {
			return meta.SHA256, nil
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("compute sha256: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("compute sha256: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// open opens an object and describes it. The caller closes the file.
func (s *store) open(ref storage.ObjectRef) (*os.File, *storage.ObjectInfo, error) {
	data, sum, err := objectPaths(ref)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.root.Open(data)
	if isMissing(err) {
		return nil, nil, notFound(ref)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open object %q: %w", ref.Key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, notFound(ref) // a folder of other objects
	}
	var sha string
	if err == nil {
		sha, err = s.checksum(sum, fi, f)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("read object %q: %w", ref.Key, err)
	}
	return f, &storage.ObjectInfo{Ref: ref, Size: fi.Size(), SHA256: sha, ModifiedAt: fi.ModTime().UTC()}, nil
}

func (s *store) get(_ context.Context, ref storage.ObjectRef) (io.ReadCloser, *storage.ObjectInfo, error) {
	return s.open(ref)
}

func (s *store) stat(_ context.Context, ref storage.ObjectRef) (*storage.ObjectInfo, error) {
	f, info, err := s.open(ref)
	if err != nil {
		return nil, err
	}
	_ = f.Close() // opened read-only to describe it
	return info, nil
}

func encodePageToken(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodePageToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || storage.ValidateKey(string(b)) != nil {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, "pageToken", "is not a page token returned by List")
	}
	return string(b), nil
}

func (s *store) list(ctx context.Context, req *storage.ListRequest) (*storage.ListResponse, error) {
	pageSize, err := req.Validate()
	if err != nil {
		return nil, err
	}
	after := ""
	if req.PageToken != "" {
		if after, err = decodePageToken(req.PageToken); err != nil {
			return nil, err
		}
	}
	base := scopeDir(req.Scope)
	start := base
	if i := strings.LastIndex(req.Prefix, "/"); i > 0 {
		start = base + "/" + req.Prefix[:i] // validated elements only
	}
	var keys []string
	err = fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && isMissing(err) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // folders are walked; symlinks are not objects
		}
		key := strings.TrimPrefix(p, base+"/")
		if strings.HasPrefix(key, req.Prefix) && key > after {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	slices.Sort(keys)
	out := &storage.ListResponse{Items: []storage.ObjectInfo{}}
	for _, key := range keys {
		if len(out.Items) == pageSize {
			out.NextPageToken = encodePageToken(out.Items[pageSize-1].Ref.Key)
			break
		}
		info, err := s.stat(ctx, storage.ObjectRef{Scope: req.Scope, Key: key})
		if errors.Is(err, sdk.ErrNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, *info)
	}
	return out, nil
}

func (s *store) delete(_ context.Context, ref storage.ObjectRef) error {
	data, sum, err := objectPaths(ref)
	if err != nil {
		return err
	}
	fi, err := s.root.Lstat(data)
	if isMissing(err) || (err == nil && fi.IsDir()) {
		return notFound(ref)
	}
	if err != nil {
		return fmt.Errorf("delete object %q: %w", ref.Key, err)
	}
	if err := s.root.Remove(data); err != nil {
		if isMissing(err) {
			return notFound(ref)
		}
		return fmt.Errorf("delete object %q: %w", ref.Key, err)
	}
	if err := s.root.Remove(sum); err != nil && !isMissing(err) {
		return fmt.Errorf("delete the checksum of %q: %w", ref.Key, err)
	}
	s.removeEmptyParents(data, path.Join(objectsDir, kindDir(ref.Scope.Kind)))
	s.removeEmptyParents(sum, path.Join(sumsDir, kindDir(ref.Scope.Kind)))
	return nil
}

// removeEmptyParents removes the folders above p that are left empty, up
// to (not including) stop. Removing a folder that is not empty fails, which
// ends the climb; a Put racing with it retries its rename.
func (s *store) removeEmptyParents(p, stop string) {
	for dir := path.Dir(p); dir != stop && strings.HasPrefix(dir, stop+"/"); dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil {
			return
		}
	}
}

func (s *store) prune(ctx context.Context, kind storage.ScopeKind, olderThan time.Time) (int64, error) {
	if err := storage.ValidateKind("kind", kind); err != nil {
		return 0, err
	}
	top := path.Join(objectsDir, kindDir(kind))
	var (
		deleted int64
		dirs    []string
	)
	err := fs.WalkDir(s.root.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isMissing(err) {
				return nil // removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != top {
				dirs = append(dirs, p)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(olderThan) {
			return nil // gone meanwhile, or recent
		}
		if err := s.root.Remove(p); err != nil {
			if isMissing(err) {
				return nil
			}
			return fmt.Errorf("remove %s: %w", p, err)
		}
		deleted++
		if err := s.root.Remove(sumsDir + strings.TrimPrefix(p, objectsDir)); err != nil && !isMissing(err) {
			return fmt.Errorf("remove the checksum of %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return deleted, fmt.Errorf("prune %s objects: %w", kind, err)
	}
	// Deepest first, so emptied folders go with their parents.
	for _, d := range slices.Backward(dirs) {
		if s.root.Remove(d) == nil {
			_ = s.root.Remove(sumsDir + strings.TrimPrefix(d, objectsDir)) // empty too unless a Put is racing
		}
	}
	return deleted, nil
}
