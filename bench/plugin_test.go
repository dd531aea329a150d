// Package bench holds the benchmarks behind docs/performance.md. Each
// figure is reported next to a baseline measured in the same run, so the
// ratio is what to compare across machines.
package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/palvella/palvella/bench/echoplugin"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

var echoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "palvella-bench")
	if err != nil {
		panic(err)
	}
	echoBin = filepath.Join(dir, "echo")
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", echoBin, "./testdata/echo").CombinedOutput(); err != nil {
		panic("build echo plugin: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// latencies records per-call durations and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func measure(b *testing.B, c credential.Credential) {
	ctx := context.Background()
	for range 100 { // warm up the connection
		if _, err := c.Get(ctx, "x"); err != nil {
			b.Fatal(err)
		}
	}
	l := make(latencies, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := c.Get(ctx, "x"); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	b.StopTimer()
	l.report(b)
}

// BenchmarkUnaryInProcess is the baseline: the plugin's method called
// directly.
func BenchmarkUnaryInProcess(b *testing.B) {
	measure(b, echoplugin.New())
}

// BenchmarkUnaryGRPCInProcess goes through the SDK's shims and gRPC over an
// in-memory connection (no process boundary, no TLS).
func BenchmarkUnaryGRPCInProcess(b *testing.B) {
	measure(b, sdktest.OverGRPC(b, credential.Credential(echoplugin.New()), credential.Service))
}

// BenchmarkUnaryPlugin calls a real plugin process launched by the plugin
// host: unix socket, mutual TLS.
func BenchmarkUnaryPlugin(b *testing.B) {
	m, err := pluginhost.New(pluginhost.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown()
	sum, err := pluginhost.SHA256File(echoBin)
	if err != nil {
		b.Fatal(err)
	}
	p, err := m.Add(pluginhost.Spec{Name: "echo", Source: pluginhost.SourcePath, Path: echoBin, SHA256: sum})
	if err != nil {
		b.Fatal(err)
	}
	c, err := pluginhost.Client[credential.Credential](context.Background(), p, sdk.CategoryCredential)
	if err != nil {
		b.Fatal(err)
	}
	measure(b, c)
}

// BenchmarkColdStartTrue is the baseline of a cold start: fork and exec of
// /bin/true, waited for.
func BenchmarkColdStartTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStartBuiltin launches builtin plugins of the palvella binary
// (checksum, handshake, mutual TLS, Describe and Configure) up to their
// first successful call, then stops them. engine-local is the heaviest to
// start (it sets up its cgroup and supervisor before it serves);
// credential-builtin is a plain one.
func BenchmarkColdStartBuiltin(b *testing.B) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"engine-local", "credential-builtin"} {
		b.Run(name, func(b *testing.B) {
			coldStart(b, pluginhost.Spec{Name: name, Source: pluginhost.SourceBuiltin, Path: bin, Args: []string{"plugin", "serve", name}, SHA256: sum})
		})
	}
}

// BenchmarkColdStartSmallPlugin is the same for a small external plugin.
func BenchmarkColdStartSmallPlugin(b *testing.B) {
	sum, err := pluginhost.SHA256File(echoBin)
	if err != nil {
		b.Fatal(err)
	}
	coldStart(b, pluginhost.Spec{Name: "echo", Source: pluginhost.SourcePath, Path: echoBin, SHA256: sum})
}

// BenchmarkHashBuiltinBinary is the sha256 of the palvella binary: what
// every launch of a builtin cost before the plugin host kept the identity
// of the binaries it had hashed (docs/design/plugin-launch.md).
func BenchmarkHashBuiltinBinary(b *testing.B) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	for b.Loop() {
		if _, err := pluginhost.SHA256File(bin); err != nil {
			b.Fatal(err)
		}
	}
}

// coldStart launches spec repeatedly and reports the p50 and p99 from
// launch to first call, and the p50 as a multiple of /bin/true's, timed
// in the same run.
func coldStart(b *testing.B, spec pluginhost.Spec) {
	settled(b, spec.Path)
	trueP50 := binTrue(b)
	m, err := pluginhost.New(pluginhost.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown()
	launch := func(name string) time.Duration {
		s := spec
		s.Name = name
		start := time.Now()
		p, err := m.Add(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Manifest(context.Background()); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		m.Remove(s.Name)
		return d
	}
	// The first launch hashes the binary; later ones check its identity.
	first := launch(spec.Name + "-first")
	l := make(latencies, 0, b.N)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		l = append(l, launch(spec.Name+"-"+strconv.Itoa(i)))
		i++
	}
	b.StopTimer()
	l.report(b)
	b.ReportMetric(float64(first.Microseconds()), "first-µs")
	b.ReportMetric(float64(l[len(l)/2])/float64(trueP50), "p50-x-true")
}

// binTrue is the median time of fork and exec of /bin/true.
func binTrue(b *testing.B) time.Duration {
	l := make(latencies, 0, 41)
	for range cap(l) {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[len(l)/2]
}

// settled waits until path has not changed for longer than the plugin
// host's racy window (2 s), as an installed binary has not: a binary
// changed within it is hashed again at each launch.
func settled(b *testing.B, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	if wait := 2100*time.Millisecond - time.Since(fi.ModTime()); wait > 0 {
		time.Sleep(wait)
	}
}
