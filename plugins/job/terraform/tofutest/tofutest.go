// Package tofutest finds the real OpenTofu that the terraform job's tests
// run.
package tofutest

import (
	"os"
	"os/exec"
	"testing"
)

// Binary is PALVELLA_TOFU, which .ci/run and `make test` set to the binary
// .ci/build-tofu builds once and caches outside the clone. It fails t,
// saying how to build one, when it is unset or does not run.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("PALVELLA_TOFU")
	if bin == "" {
		t.Fatal("PALVELLA_TOFU is not set. This test runs the real OpenTofu: build it once " +
			"(about 5 minutes, cached under ~/.cache/palvella) and point to it:\n" +
			"  export PALVELLA_TOFU=$(.ci/build-tofu)\n" +
			"`make test` and .ci/run do this themselves.")
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
		t.Fatalf("PALVELLA_TOFU=%s does not run: %v\n%s\nRebuild it with .ci/build-tofu.", bin, err, out)
	}
	return bin
}
