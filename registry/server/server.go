// Package server serves a registry directory over HTTP, as
// `palvella registry serve DIR --listen ADDR` does.
//
// Only what a client needs is served: index.json and the files under
// artifacts/ and blobs/. Everything else (a stray key file, dotfiles,
// temporary files, directory listings) answers 404. The index is served
// with Cache-Control: no-cache so caches revalidate it (a cached old index
// would freeze clients); artifacts are immutable and cached for a year.
package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// Handler returns an http.Handler serving the registry in dir.
func Handler(dir string) http.Handler {
	files := http.FileServer(noDirFS{http.Dir(dir)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		switch {
		case p == "/index.json":
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-cache")
		case allowedArtifact(p):
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		files.ServeHTTP(w, r2)
	})
}

func allowedArtifact(p string) bool {
	if !strings.HasPrefix(p, "/artifacts/") && !strings.HasPrefix(p, "/blobs/") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

// noDirFS refuses directories, so no listing is ever produced.
type noDirFS struct{ fs http.FileSystem }

func (n noDirFS) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, os.ErrNotExist
	}
	return f, nil
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
