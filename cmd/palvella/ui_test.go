package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// uiTestDir holds the browser test: package.json, its lockfile and the
// script playwright-core runs.
var uiTestDir = filepath.Join("testdata", "ui")

// TestWebUIInABrowser drives the web UI in Debian's Chromium through
// playwright-core (testdata/ui/ui.test.mjs): sign in, run the terraform
// example with environment=prod, approve it as an operator while a viewer
// has no approve button, follow a live log, tokens, and an axe-core check.
// It fails, not skips, without Node or Chromium: .ci/run installs them.
// PALVELLA_UI_SHOTS names a folder to write screenshots of the pages to
// (docs/ui holds the ones docs/ui.md shows).
func TestWebUIInABrowser(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the web UI test needs Node.js (apt-get install -y nodejs npm): %v", err)
	}
	chromium := os.Getenv("PALVELLA_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the web UI test needs Chromium at %s (apt-get install -y chromium, or PALVELLA_CHROMIUM): %v", chromium, err)
	}
	npmCI(t)

	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "terraform/pipeline.yaml"))
	s.mustCLI("pipeline", "apply", "-f", filepath.Join(uiTestDir, "ticker.yaml"))
	s.mustCLI("credential", "set", "ui-secret", "--value", "s3cr3t-value")
	operator := s.newToken("alice", "--role", "operator")
	viewer := s.newToken("vic", "--role", "viewer")

	shots := os.Getenv("PALVELLA_UI_SHOTS")
	if shots != "" && !filepath.IsAbs(shots) {
		t.Fatalf("PALVELLA_UI_SHOTS must be an absolute path, not %q", shots)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ui.test.mjs")
	cmd.Dir = uiTestDir
	cmd.Env = append(os.Environ(),
		"PALVELLA_URL=http://"+s.addr,
		"OPERATOR_TOKEN="+operator.Token,
		"VIEWER_TOKEN="+viewer.Token,
		"ADMIN_TOKEN="+s.adminToken(),
		"TF_STUB="+exampleFile(t, "terraform/terraform-stub.sh"),
		"CHROMIUM="+chromium,
		"SHOTS="+shots,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("browser test:\n%s", out)
	if err != nil || !strings.Contains(string(out), "all passed") {
		t.Fatalf("the browser test failed (%v); server log:\n%s", err, s.logTail())
	}
}

// npmCI installs the test's npm packages from the lockfile when
// node_modules does not hold the locked versions.
func npmCI(t *testing.T) {
	t.Helper()
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(uiTestDir, "package-lock.json"))
	if err == nil {
		err = json.Unmarshal(b, &lock)
	}
	if err != nil {
		t.Fatalf("read the UI test's package-lock.json: %v", err)
	}
	installed := true
	for path, p := range lock.Packages {
		if path == "" {
			continue
		}
		var got struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join(uiTestDir, path, "package.json"))
		if err != nil || json.Unmarshal(b, &got) != nil || got.Version != p.Version {
			installed = false
			break
		}
	}
	if installed {
		return
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = uiTestDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", uiTestDir, err, out)
	}
}

// TestWebUIIsServedWithoutATokenAndOpensNoData: the UI's files need no
// token and carry their security headers; the API behind them still asks
// for one, and methods other than GET reach the API, not the files.
func TestWebUIIsServedWithoutATokenAndOpensNoData(t *testing.T) {
	s := startServer(t, "")
	r := s.call(http.MethodGet, "/", "", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `<script type="module" src="/ui/js/main.js">`) {
		t.Fatalf("GET / = %d: %.200s", r.status, r.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options"} {
		if r.header.Get(h) == "" {
			t.Errorf("GET / has no %s header", h)
		}
	}
	if r := s.call(http.MethodGet, "/ui/js/run.js", "", ""); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /ui/js/run.js = %d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/whoami"}, {http.MethodGet, "/api/v1/namespaces/default/pipelines"},
		{http.MethodPost, "/api/v1/whoami/access"}, {http.MethodGet, "/metrics"},
	} {
		if r := s.call(c.method, c.path, "", "{}"); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token = %d, want 401", c.method, c.path, r.status)
		}
	}
	if r := s.call(http.MethodPost, "/", "", "{}"); r.status == http.StatusOK {
		t.Errorf("POST / = 200: only GET and HEAD reach the UI's files")
	}
}
