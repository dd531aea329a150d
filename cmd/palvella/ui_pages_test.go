package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestWebUIRunTimelineTriggersRegistries drives the run page's timeline
// (testdata/ui/pages.test.mjs): a row per job growing while the job
// runs, keyboard navigation through jobs and actions, the final drawing
// and an axe-core check.
func TestWebUIRunTimelineTriggersRegistries(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", filepath.Join(uiTestDir, "stages.yaml"))
	operator := s.newToken("olga", "--role", "operator")
	browserScript(t, s, "pages.test.mjs", 5*time.Minute,
		"OPERATOR_TOKEN="+operator.Token, "ADMIN_TOKEN="+s.adminToken())
}
