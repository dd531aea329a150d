package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/resource"
)

// A pipeline author's job tries to read what makes the server's owner an
// admin: the CLI's token, the credential key, the database, and the
// server's environment (the key given as PALVELLA_SECRET_KEY). It gets none
// of them.
func TestJobCannotReachTheServersSecrets(t *testing.T) {
	home := t.TempDir()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	s := &testServer{t: t, home: home, addr: freeAddr(t)}
	t.Setenv("PALVELLA_SECRET_KEY", key)
	s.start()
	t.Cleanup(func() { s.stop(15) })
	os.Unsetenv("PALVELLA_SECRET_KEY")

	s.mustCLI("pipeline", "apply", "-f", filepath.Join("testdata", "attacks", "reach.yaml"))
	s.mustCLI("pipeline", "run", "reach", "-p", "home="+home, "-p", "server_pid="+strconv.Itoa(s.cmd.Process.Pid), "--wait")
	r := s.waitRun("reach-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run = %s (%s)", r.Status, r.Reason)
	}
	logs := s.mustCLI("run", "logs", "reach-1")
	if !strings.Contains(logs, "done") {
		t.Fatalf("the job did not run to its end:\n%s", logs)
	}
	if !strings.Contains(logs, "/canary") {
		t.Fatalf("the job could not read its own files: the check proves nothing:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if (strings.Contains(line, "READ ") && !strings.Contains(line, "/canary")) || strings.Contains(line, "ENVIRON ") {
			t.Errorf("the job reached the server's secrets: %s", line)
		}
	}
	token := s.adminToken()
	for _, secret := range []string{token, key} {
		if strings.Contains(logs, secret) || strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte(secret))) {
			t.Errorf("a secret is in the job's log:\n%s", logs)
		}
	}
}
