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

// BenchmarkColdStartBuiltin launches a builtin plugin of the palvella binary
// (checksum of the whole binary, handshake, mutual TLS, Describe and
// Configure) up to its first successful call, then stops it.
func BenchmarkColdStartBuiltin(b *testing.B) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		b.Fatal(err)
	}
	coldStart(b, pluginhost.Spec{Name: "engine-local", Source: pluginhost.SourceBuiltin, Path: bin, Args: []string{"plugin", "serve", "engine-local"}, SHA256: sum})
}

// BenchmarkColdStartSmallPlugin is the same for a small external plugin.
func BenchmarkColdStartSmallPlugin(b *testing.B) {
	sum, err := pluginhost.SHA256File(echoBin)
	if err != nil {
		b.Fatal(err)
	}
	coldStart(b, pluginhost.Spec{Name: "echo", Source: pluginhost.SourcePath, Path: echoBin, SHA256: sum})
}

func coldStart(b *testing.B, spec pluginhost.Spec) {
	m, err := pluginhost.New(pluginhost.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown()
	l := make(latencies, 0, b.N)
	i := 0
	for b.Loop() {
		s := spec
		s.Name = spec.Name + "-" + strconv.Itoa(i)
		i++
		start := time.Now()
		p, err := m.Add(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Manifest(context.Background()); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
		b.StopTimer()
		m.Remove(s.Name)
		b.StartTimer()
	}
	l.report(b)
}
