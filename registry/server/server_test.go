package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry/server"
)

func TestServesOnlyRegistryFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "artifacts", "engine-x", "1.0.0"), 0o755)
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{}`), 0o644)
	os.WriteFile(filepath.Join(dir, "artifacts", "engine-x", "1.0.0", "engine-x_linux_amd64"), []byte("bin"), 0o644)
	os.WriteFile(filepath.Join(dir, "artifacts", "engine-x", "1.0.0", ".upload-123"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(dir, "root.key"), []byte("secret"), 0o600)
	srv := httptest.NewServer(server.Handler(dir))
	defer srv.Close()

	get := func(method, path string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	r := get("GET", "/index.json")
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("index: %d %v", r.StatusCode, r.Header)
	}
	r = get("GET", "/artifacts/engine-x/1.0.0/engine-x_linux_amd64")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/octet-stream" || r.ContentLength != 3 {
		t.Errorf("artifact: %d %v", r.StatusCode, r.Header)
	}
	for _, p := range []string{"/root.key", "/artifacts/", "/artifacts/engine-x", "/artifacts/engine-x/1.0.0/.upload-123", "/../etc/passwd", "/artifacts/../root.key", "/"} {
		if r := get("GET", p); r.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
	if r := get("POST", "/index.json"); r.StatusCode != 405 {
		t.Errorf("POST = %d", r.StatusCode)
	}
	if r := get("HEAD", "/index.json"); r.StatusCode != 200 {
		t.Errorf("HEAD = %d", r.StatusCode)
	}
}
