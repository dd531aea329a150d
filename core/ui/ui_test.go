package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// api stands for the API: it answers 401 to everything, as the real one
// does without a token.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-From", "api")
	http.Error(w, "unauthenticated", http.StatusUnauthorized)
})

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestServesTheUIWithoutATokenAndWithItsHeaders(t *testing.T) {
	h := Handler(api)
	for path, ctype := range map[string]string{"/": "text/html", "/ui/app.css": "text/css", "/ui/js/main.js": "text/javascript"} {
		r := get(t, h, http.MethodGet, path)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s = %d %s, want 200 %s", path, r.StatusCode, r.Header.Get("Content-Type"), ctype)
		}
		if r.Header.Get("Content-Security-Policy") != CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: CSP %q, X-Content-Type-Options %q", path, r.Header.Get("Content-Security-Policy"), r.Header.Get("X-Content-Type-Options"))
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe-inline") {
		t.Errorf("CSP %q must allow this origin's scripts only", CSP)
	}
}

func TestEverythingElseGoesToTheAPI(t *testing.T) {
	h := Handler(api)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/whoami"}, {"GET", "/metrics"}, {"POST", "/"}, {"PUT", "/ui/app.css"},
		{"GET", "/api/v1/namespaces/default/pipelines"}, {"GET", "/favicon.ico"},
	} {
		r := get(t, h, c.method, c.path)
		if r.Header.Get("X-From") != "api" || r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s = %d, not the API's answer", c.method, c.path, r.StatusCode)
		}
	}
}

func TestNoDirectoryListingsOrEscapes(t *testing.T) {
	h := Handler(api)
	for _, p := range []string{"/ui/", "/ui/js/", "/ui/../ui.go", "/ui/nothing.js"} {
		if r := get(t, h, http.MethodGet, p); r.StatusCode == http.StatusOK {
			b, _ := io.ReadAll(r.Body)
			t.Errorf("GET %s = 200: %.80s", p, b)
		}
	}
}

// The CSP forbids inline scripts and styles, so the files must have none,
// and they load nothing from another origin.
func TestFilesHaveNoInlineScriptOrRemoteURL(t *testing.T) {
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=|style=`)
	remote := regexp.MustCompile(`(?:src|href)=["']?(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//`)
	err := fs.WalkDir(Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Files, path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".html") && inline.Match(b) {
			t.Errorf("%s has an inline script, handler or style: %s", path, inline.Find(b))
		}
		if remote.Match(b) {
			t.Errorf("%s loads from another origin: %s", path, remote.Find(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
