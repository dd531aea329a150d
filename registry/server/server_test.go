package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/server"
)

func TestMain(m *testing.M) {
	code := m.Run()
	regtest.Cleanup()
	os.Exit(code)
}

func get(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestServesOnlyWhatTheIndexReferences(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-x", Version: "1.0.0"}))
	art := "/" + f.Index(t).Plugins[0].Versions[0].Artifacts[0].URL
	vdir := filepath.Join(f.Dir, "artifacts", "engine-x", "1.0.0")
	// What an operator might leave behind under artifacts/.
	os.WriteFile(filepath.Join(vdir, ".upload-123"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(f.Dir, "artifacts", "root.key"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(vdir, "engine-x_linux_amd64.old"), []byte("old build"), 0o644)
	os.WriteFile(filepath.Join(f.Dir, "root.key"), []byte("secret"), 0o600)
	srv := httptest.NewServer(server.Handler(f.Dir))
	defer srv.Close()

	r, _ := get(t, srv, "GET", "/index.json")
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("index: %d %v", r.StatusCode, r.Header)
	}
	r, _ = get(t, srv, "GET", art)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/octet-stream" || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("artifact %s: %d %v", art, r.StatusCode, r.Header)
	}
	for _, p := range []string{"/root.key", "/artifacts/root.key", "/artifacts/engine-x/1.0.0/engine-x_linux_amd64.old",
		"/artifacts/", "/artifacts/engine-x", "/artifacts/engine-x/1.0.0/.upload-123", "/../etc/passwd", "/artifacts/../root.key", "/"} {
		if r, body := get(t, srv, "GET", p); r.StatusCode != 404 || body == "secret" {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
	if r, _ := get(t, srv, "POST", "/index.json"); r.StatusCode != 405 {
		t.Errorf("POST = %d", r.StatusCode)
	}
	if r, _ := get(t, srv, "HEAD", "/index.json"); r.StatusCode != 200 {
		t.Errorf("HEAD = %d", r.StatusCode)
	}

	// A version published later is served without a restart.
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-x", Version: "1.0.1"}))
	for _, v := range f.Index(t).Plugins[0].Versions {
		if r, _ := get(t, srv, "GET", "/"+v.Artifacts[0].URL); r.StatusCode != 200 {
			t.Errorf("artifact of %s after re-reading the index: %d", v.Version, r.StatusCode)
		}
	}
}

func TestNeverServesThroughSymlinks(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: "engine-x", Version: "1.0.0"}))
	art := f.Index(t).Plugins[0].Versions[0].Artifacts[0].URL
	srv := httptest.NewServer(server.Handler(f.Dir))
	defer srv.Close()

	// The referenced artifact replaced by a link to a file outside.
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	p := filepath.Join(f.Dir, filepath.FromSlash(art))
	os.Remove(p)
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	if r, body := get(t, srv, "GET", "/"+art); r.StatusCode != 404 || body == "secret" {
		t.Errorf("artifact that is a symlink out of the folder: %d %q", r.StatusCode, body)
	}
	// A directory on the way that is a link (inside the folder, even).
	os.Remove(p)
	vdir := filepath.Dir(p)
	real := vdir + "-real"
	os.Rename(vdir, real)
	os.WriteFile(filepath.Join(real, filepath.Base(p)), []byte("x"), 0o644)
	if err := os.Symlink(real, vdir); err != nil {
		t.Fatal(err)
	}
	if r, _ := get(t, srv, "GET", "/"+art); r.StatusCode != 404 {
		t.Errorf("artifact through a linked directory: %d", r.StatusCode)
	}
}
