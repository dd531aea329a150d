package client_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
)

// BenchmarkVerify50MB streams a 50 MB artifact through the size and sha256
// checks, and reports the ratio to `sha256sum` on the same file (run in the
// same benchmark) as x-sha256sum: 1.0 means as fast as coreutils.
func BenchmarkVerify50MB(b *testing.B) {
	const size = 50 << 20
	dir := b.TempDir()
	file := filepath.Join(dir, "artifact")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	a := &index.Artifact{OS: "linux", Arch: "amd64", URL: "artifact", Size: size, SHA256: hex.EncodeToString(sum[:])}
	src, err := client.NewSource(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	var ours time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		if err := client.Fetch(ctx, src, "engine-x", "1.0.0", a, io.Discard); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		n++
	}
	tool, err := exec.LookPath("sha256sum")
	if err != nil {
		return // no baseline on this machine; the ns/op and MB/s still stand
	}
	var theirs time.Duration
	for range n {
		start := time.Now()
		out, err := exec.Command(tool, file).Output()
		if err != nil {
			b.Fatal(err)
		}
		theirs += time.Since(start)
		if string(out[:64]) != a.SHA256 {
			b.Fatalf("sha256sum disagrees: %s", out[:64])
		}
	}
	b.ReportMetric(float64(theirs.Milliseconds())/float64(n), "sha256sum-ms")
	b.ReportMetric(float64(ours)/float64(theirs), "x-sha256sum")
}
