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

// TestPipelineEditorInABrowser builds a two-job pipeline in the web
// editor (testdata/ui/editor.test.mjs): the second job requires the first
// and its action's type and params come from the match type's schema; a
// bad pattern shows the server's problem on its field; the fixed file
// saves. Then the CLI reads back what the editor showed: the same file
// applied again changes nothing, and the stored pipeline holds its jobs.
func TestPipelineEditorInABrowser(t *testing.T) {
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
	developer := s.newToken("dana", "--role", "developer")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "editor.test.mjs")
	cmd.Dir = uiTestDir
	cmd.Env = append(os.Environ(), "PALVELLA_URL=http://"+s.addr, "DEVELOPER_TOKEN="+developer.Token,
		"OUT="+out, "CHROMIUM="+chromium, "SHOTS="+os.Getenv("PALVELLA_UI_SHOTS"))
	b, err := cmd.CombinedOutput()
	t.Logf("browser test:\n%s", b)
	if err != nil || !strings.Contains(string(b), "all passed") {
		t.Fatalf("the editor's browser test failed (%v); server log:\n%s", err, s.logTail())
	}
	shown := filepath.Join(out, "editor.yaml")
	if got := s.mustCLI("pipeline", "apply", "-f", shown); !strings.Contains(got, "unchanged (v1)") {
		t.Errorf("the file the editor showed, applied again: %q, want unchanged (v1): the server holds something else", got)
	}
	var got struct {
		Pipeline struct {
			Version int `json:"version"`
			Spec    struct {
				Metadata struct{ Name, Description string } `json:"metadata"`
				Spec     struct {
					Params []struct{ Name, Default string } `json:"params"`
					Jobs   []struct {
						Name     string           `json:"name"`
						Requires []string         `json:"requires"`
						Actions  []map[string]any `json:"actions"`
					} `json:"jobs"`
				} `json:"spec"`
			} `json:"spec"`
		} `json:"pipeline"`
	}
	if err := json.Unmarshal([]byte(s.mustCLI("pipeline", "get", "ui-edited", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	p := got.Pipeline.Spec
	if got.Pipeline.Version != 1 || p.Metadata.Description != "Built in the web editor" || len(p.Spec.Params) != 1 || p.Spec.Params[0].Default != "build 42 done" ||
		len(p.Spec.Jobs) != 2 || p.Spec.Jobs[0].Name != "build" || p.Spec.Jobs[1].Name != "check" || strings.Join(p.Spec.Jobs[1].Requires, ",") != "build" {
		t.Fatalf("stored pipeline: %+v", got.Pipeline)
	}
	a := p.Spec.Jobs[1].Actions
	if len(a) != 1 || a[0]["type"] != "match" || a[0]["pattern"] != "([0-9]+)" || a[0]["input"] != "${{ params.number_text }}" {
		t.Errorf("stored action of check: %v", a)
	}
	if r := p.Spec.Jobs[0].Actions; len(r) != 1 || r[0]["run"] != `echo "${{ params.number_text }}"` {
		t.Errorf("stored action of build: %v", r)
	}
}

// TestVendoredYAMLIsTheLockedPackage: the UI's copy of js-yaml is the
// file of the version package-lock.json pins, unchanged.
func TestVendoredYAMLIsTheLockedPackage(t *testing.T) {
	npmCI(t)
	for vendored, locked := range map[string]string{
		"../../core/ui/static/vendor/js-yaml.mjs":     "node_modules/js-yaml/dist/js-yaml.mjs",
		"../../core/ui/static/vendor/js-yaml.LICENSE": "node_modules/js-yaml/LICENSE",
	} {
		a, err := os.ReadFile(vendored)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(uiTestDir, locked))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("%s is not %s of the locked package: copy it again after changing the lock", vendored, locked)
		}
	}
}
