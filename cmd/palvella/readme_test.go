package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeWalkthrough returns the shell block of the README's "A first run".
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## A first run")
	if i < 0 {
		t.Fatal(`README.md has no "## A first run" section`)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatal("the first-run section has no ```sh block")
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("the first-run block does not end")
	}
	return s[:end]
}

// The README's walkthrough, run verbatim on a fresh PALVELLA_HOME against a
// real server, from a folder laid out as the repository is after `make
// build`.
func TestReadmeWalkthrough(t *testing.T) {
	script := readmeWalkthrough(t)
	s := startServer(t, "")
	dir := t.TempDir()
	// Jobs may run as another user: they read the examples through here.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(palvellaBin, filepath.Join(dir, "bin", "palvella")); err != nil {
		t.Fatal(err)
	}
	// A copy, not a link: the clone may be in a folder only root enters.
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot, "examples"), filepath.Join(dir, "examples")).CombinedOutput(); err != nil {
		t.Fatalf("copy the examples: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", filepath.Join(dir, "examples")).CombinedOutput(); err != nil {
		t.Fatalf("chmod the examples: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "-e", "-x", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the walkthrough did not finish in 3 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\nserver log:\n%s", err, out, s.logTail())
	}
	for _, want := range []string{"test finished with status success", "alpine-version-check (v1)", "deploy-terraform (v1)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walkthrough's output has no %q:\n%s", want, out)
		}
	}
	// Deleting ci stopped its interval trigger: no pipeline is left to fire.
	if list := s.mustCLI("pipeline", "list"); strings.Contains(list, "\nci ") {
		t.Errorf("ci is still there after the walkthrough:\n%s", list)
	}
}
