// Package server serves a registry directory over HTTP, as
// `palvella registry serve DIR --listen ADDR` does.
//
// Only what the index references is served: index.json, and the artifact
// files its artifacts point at (a relative URL, or blobs/sha256/HEX for an
// artifact whose URL is absolute). Anything else — a key file left under
// artifacts/, another version's leftovers, dotfiles, directory listings —
// answers 404, and so does any path that goes through a symbolic link, so
// a link cannot expose a file outside the folder. The index is re-read
// whenever it changes on disk. It is served with Cache-Control: no-cache
// so caches revalidate it (a cached old index would freeze clients);
// artifacts are immutable and cached for a year.
package server

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/registry/index"
)

// indexFile is the index's name in the folder.
const indexFile = "index.json"

// Handler returns an http.Handler serving the registry in dir.
func Handler(dir string) http.Handler {
	s := &site{dir: dir}
	return http.HandlerFunc(s.serve)
}

type site struct {
	dir string

	mu      sync.Mutex
	stamp   string          // size and mtime of the index last read
	allowed map[string]bool // clean relative paths the index references
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	allowed, err := s.references()
	switch {
	case err != nil:
		http.Error(w, "registry index unavailable", http.StatusServiceUnavailable)
		return
	case p == indexFile:
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
	case allowed[p]:
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		http.NotFound(w, r)
		return
	}
	f, st, err := openNoLinks(s.dir, p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	http.ServeContent(w, r, path.Base(p), st.ModTime(), f)
}

// references returns the paths the index references, re-reading the index
// when its size or modification time changed.
func (s *site) references() (map[string]bool, error) {
	f, st, err := openNoLinks(s.dir, indexFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stamp := st.ModTime().String() + "/" + itoa(st.Size())
	s.mu.Lock()
	defer s.mu.Unlock()
	if stamp == s.stamp {
		return s.allowed, nil
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	ix, err := index.Parse(data)
	if err != nil {
		return nil, err
	}
	allowed := map[string]bool{}
	for _, p := range ix.Plugins {
		for _, v := range p.Versions {
			for _, a := range v.Artifacts {
				if strings.Contains(a.URL, "://") {
					allowed["blobs/sha256/"+a.SHA256] = true
				} else if index.SafeRelPath(a.URL) {
					allowed[path.Clean(a.URL)] = true
				}
			}
		}
	}
	s.stamp, s.allowed = stamp, allowed
	return allowed, nil
}

// openNoLinks opens the regular file rel inside dir, refusing a path any
// component of which is a symbolic link (and, through os.Root, any path
// that would leave dir).
func openNoLinks(dir, rel string) (*os.File, fs.FileInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	parts := strings.Split(rel, "/")
	for i := range parts {
		if parts[i] == "" || strings.HasPrefix(parts[i], ".") {
			return nil, nil, fs.ErrNotExist
		}
		st, err := root.Lstat(strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil, nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return nil, nil, fs.ErrNotExist
		}
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, st, nil
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// New returns an *http.Server for dir on addr with conservative timeouts.
func New(dir, addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           Handler(dir),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve serves dir on ln until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, dir string, ln net.Listener) error {
	srv := New(dir, ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
