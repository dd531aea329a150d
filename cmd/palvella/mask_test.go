package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/palvella/palvella/core/resource"
)

const maskPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: masked
spec:
  env:
    SECRET: {from_credential: out-secret}
    ODD: {from_credential: odd-secret}
  jobs:
    - name: leak
      actions:
        - name: keys
          run: |
            echo "$SECRET=x" >> "$PALVELLA_OUTPUT"
            echo "value=$SECRET" >> "$PALVELLA_OUTPUT"
            echo "pre$SECRET=y" >> "$PALVELLA_OUTPUT"
            printf 'multi<<%s\nline %s\n%s\n' "$SECRET" "$SECRET" "$SECRET" >> "$PALVELLA_OUTPUT"
        - name: badkey
          on_failure: continue
          run: echo "$ODD=1" >> "$PALVELLA_OUTPUT"
    - name: after
      requires: [leak]
      actions:
        - name: show
          run: echo "outputs ${{ jobs.leak.outputs }}"
`

// TestOutputsMasked: a job that names outputs after a secret, gives them a
// secret value or a secret delimiter, or writes a secret where an output
// name should be, leaves the secret in no answer and no file.
func TestOutputsMasked(t *testing.T) {
	s := startServer(t, "")
	secret := randomSecret(t)
	odd := "odd@" + strings.Repeat(randomSecret(t), 2) // not an output name, and long
	s.mustCLI("credential", "set", "out-secret", "--value", secret)
	s.mustCLI("credential", "set", "odd-secret", "--value", odd)
	file := filepath.Join(t.TempDir(), "masked.yaml")
	if err := os.WriteFile(file, []byte(maskPipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)
	out, errOut, _ := s.cli("pipeline", "run", "masked", "--wait")
	seen := []string{out, errOut}
	r := s.waitRun("masked-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s:\n%s", r.Status, s.mustCLI("run", "logs", "masked-1"))
	}
	keys := actionOf(t, r, "leak", "keys").Outputs
	if keys["***"] != "x" || keys["value"] != "***" || keys["pre***"] != "y" || keys["multi"] != "line ***" {
		t.Errorf("outputs of keys: %v", keys)
	}
	if bad := actionOf(t, r, "leak", "badkey"); bad.Status != resource.StatusFailure || !strings.Contains(bad.Message, "not a valid output name") {
		t.Errorf("badkey: %s %q", bad.Status, bad.Message)
	}
	logs := s.mustCLI("run", "logs", "masked-1")
	if !strings.Contains(logs, `outputs {"***":"x"`) {
		t.Errorf("the next job does not see masked outputs:\n%s", logs)
	}
	seen = append(seen, logs, s.mustCLI("run", "get", "masked-1"), s.mustCLI("run", "get", "masked-1", "-o", "json"),
		s.mustCLI("run", "dump", "masked-1"), s.mustCLI("run", "timeline", "masked-1"))
	admin := s.adminToken()
	for _, p := range []string{"/api/v1/namespaces/default/runs/masked-1", "/api/v1/namespaces/default/runs/masked-1/jobs",
		"/api/v1/namespaces/default/runs/masked-1/jobs/leak/actions"} {
		seen = append(seen, string(s.call("GET", p, admin, "").body))
	}
	values := []string{secret, odd, odd[:40]}
	for i, text := range seen {
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("answer %d holds a secret:\n%s", i, text)
			}
		}
	}
	s.stop(syscall.SIGTERM) // flush the databases
	if err := filepath.WalkDir(s.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds a secret in clear", path)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
