package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/registry/sign"
)

// browserScript runs one of the browser tests of testdata/ui with node
// against a running server, env added to the script's environment, and
// fails the test unless the script says "all passed". It fails, not
// skips, without Node or Chromium: .ci/run installs them.
func browserScript(t *testing.T, s *testServer, script string, timeout time.Duration, env ...string) string {
	t.Helper()
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
	shots := os.Getenv("PALVELLA_UI_SHOTS")
	if shots != "" && !filepath.IsAbs(shots) {
		t.Fatalf("PALVELLA_UI_SHOTS must be an absolute path, not %q", shots)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = uiTestDir
	cmd.Env = append(append(os.Environ(), "PALVELLA_URL=http://"+s.addr, "CHROMIUM="+chromium, "SHOTS="+shots), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil || !strings.Contains(string(out), "all passed") {
		t.Fatalf("the browser test %s failed (%v); server log:\n%s", script, err, s.logTail())
	}
	return string(out)
}

// TestWebUIRunTimelineTriggersRegistries drives the run page's timeline,
// the trigger records and the registries pages (testdata/ui/pages.test.mjs):
// a row per job growing while the job runs, keyboard navigation through
// jobs and actions; the records of a signed and an unsigned webhook call
// and a manual run, newest first, with their runs and reasons; the
// registries of the server's home with the names they own; axe-core on
// each page.
func TestWebUIRunTimelineTriggersRegistries(t *testing.T) {
	s, hooks := webhookServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", filepath.Join(uiTestDir, "stages.yaml"))
	const secret = "the UI test's webhook secret"
	s.mustCLI("credential", "set", "ci-webhook-secret", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml"))
	body := []byte(`{"ref": "refs/heads/ui-branch"}`)
	if r := hook(t, hooks+"/hooks/default/ci/on-push", body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "ui-delivery-1"); r.status != http.StatusAccepted {
		t.Fatalf("signed call: %d %+v", r.status, r.body)
	}
	time.Sleep(20 * time.Millisecond) // the records' times differ
	if r := hook(t, hooks+"/hooks/default/ci/on-push", body, "X-GitHub-Delivery", "ui-delivery-2"); r.status != http.StatusUnauthorized {
		t.Fatalf("unsigned call: %d %+v", r.status, r.body)
	}
	keyID := writeRegistries(t, s.home)
	operator := s.newToken("olga", "--role", "operator")
	browserScript(t, s, "pages.test.mjs", 5*time.Minute,
		"OPERATOR_TOKEN="+operator.Token, "ADMIN_TOKEN="+s.adminToken(), "REGISTRY_KEY_ID="+keyID)
}

// writeRegistries configures the home with the public registry and one
// that owns acme-* names, as `palvella registry add` writes them, and
// returns the id of the second one's root key.
func writeRegistries(t *testing.T, home string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"registries": [
  {"name": "palvella", "location": "https://registry.palvella.dev"},
  {"name": "acme", "location": "https://plugins.acme.example/registry", "rootKeys": [%q], "names": ["acme-*"]}
]}`, hex.EncodeToString(pub))
	if err := os.WriteFile(filepath.Join(home, "registries.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return sign.KeyID(pub)
}

// GET /api/v1/registries lists the home's registries in order, with the
// names each owns and key ids, never keys; it needs a token, and a token
// limited to namespaces is refused (the registries are the server's).
func TestRegistriesRoute(t *testing.T) {
	s := startServer(t, "")
	keyID := writeRegistries(t, s.home)
	admin := s.adminToken()
	r := s.call(http.MethodGet, "/api/v1/registries", admin, "")
	var got struct{ Items []api.Registry }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
		t.Fatalf("GET /registries = %d %s", r.status, r.body)
	}
	if len(got.Items) != 2 || got.Items[0].Name != "palvella" || !got.Items[0].BuiltInRootKey || len(got.Items[0].Names) != 0 ||
		got.Items[1].Position != 2 || got.Items[1].Name != "acme" || strings.Join(got.Items[1].Names, ",") != "acme-*" ||
		strings.Join(got.Items[1].RootKeyIDs, ",") != keyID || got.Items[1].Threshold != 1 {
		t.Errorf("registries: %s", r.body)
	}
	if strings.Contains(string(r.body), "rootKeys\"") {
		t.Errorf("the answer carries keys: %s", r.body)
	}
	viewer := s.newToken("vera", "--role", "viewer")
	if r := s.call(http.MethodGet, "/api/v1/registries", viewer.Token, ""); r.status != http.StatusOK {
		t.Errorf("a viewer: %d %s", r.status, r.body)
	}
	limited := s.newToken("lim", "--role", "viewer", "--namespace", "team-a")
	if r := s.call(http.MethodGet, "/api/v1/registries", limited.Token, ""); r.status != http.StatusForbidden {
		t.Errorf("a token limited to a namespace: %d %s, want 403", r.status, r.body)
	}
	if r := s.call(http.MethodGet, "/api/v1/registries", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.status)
	}
	// A file that does not parse is the server's problem, said as such.
	if err := os.WriteFile(filepath.Join(s.home, "registries.json"), []byte(`{"registries": [{"name": ""}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := s.call(http.MethodGet, "/api/v1/registries", admin, ""); r.status != http.StatusConflict || !strings.Contains(string(r.body), "registries[0]: name must be set") {
		t.Errorf("a broken registries.json: %d %s, want 409 naming the field", r.status, r.body)
	}
}
