// Package ui is Palvella's web UI: static files embedded in the binary and
// served at / on the API's listener. The files are plain ES modules and
// CSS with no build step; the only third-party file is js-yaml
// (static/vendor, the npm package's ES module copied unchanged) for the
// pipeline editor (docs/design/web-ui.md says why). They hold no data: every page asks the API for it with the
// signed-in token, so serving them needs no token and opens nothing.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Files are the UI's files, index.html at the root.
var Files, _ = fs.Sub(static, "static")

// Prefix is where the UI's assets are served; index.html is served at /.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every UI response: scripts,
// styles and connections to this origin only, no inline script or style,
// no frames, no plugins.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the UI at / and its assets under /ui/, and hands every
// other request to next (the API), which authenticates what it serves.
// Only GET and HEAD reach the UI's files.
func Handler(next http.Handler) http.Handler {
	files := http.FileServerFS(Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		isUI := p == "/" || p == "/index.html" || strings.HasPrefix(p, Prefix)
		if !isUI || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change with the binary: always revalidate.
		h.Set("Cache-Control", "no-cache")
		if p == "/" || p == "/index.html" {
			http.ServeFileFS(w, r, Files, "index.html")
			return
		}
		rest := strings.TrimPrefix(p, Prefix)
		if rest == "" || strings.HasSuffix(rest, "/") || rest == "index.html" {
			http.NotFound(w, r) // no directory listings
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		files.ServeHTTP(w, r2)
	})
}
