package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/server"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// fleetPIDs are the process IDs of the servers pgFleetAddrs started, by
// API address.
var fleetPIDs = map[string]int{}

// fleetPG is the PostgreSQL server of each of those servers.
var fleetPG = map[string]*pgtest.Server{}

// postmasterPID is the PID of a PostgreSQL server's postmaster, whose
// children are its backends.
func postmasterPID(tb testing.TB, s *pgtest.Server) int {
	raw, err := os.ReadFile(filepath.Join(s.Dir, "data", "postmaster.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		tb.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// replica is one server of a fleet on one PostgreSQL database.
type replica struct {
	c     *client.Client
	hooks string // the webhook URL of hookPipeline on this replica
}

// pgFleet starts n servers on a new database of a PostgreSQL server that
// the benchmark starts (pgtest), as docs/server.md "Running several
// servers" says: tokens and credentials in the database, one shared
// storage root and credential key, each replica with a home of its own.
// hookPipeline and trivialPipeline are applied.
func pgFleet(b *testing.B, n int) []replica {
	fleet, _ := pgFleetAddrs(b, n)
	return fleet
}

// pgFleetAddrs is pgFleet with flags for every server, which also returns
// the servers' API addresses. With --no-worker no trivial run is made to
// warm the replicas up.
func pgFleetAddrs(b testing.TB, n int, args ...string) ([]replica, []string) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	pg := pgtest.Start(b)
	dsn := pg.NewDatabase(b)
	shared, err := os.MkdirTemp("", "palvella-bench-fleet-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(shared) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(shared, "secret.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`apiVersion: palvella.dev/v1
kind: ServerConfig
database:
  plugin: database-postgres
  config: {dsn: {from_env: PALVELLA_BENCH_DSN}}
storage:
  plugin: storage-filesystem
  config: {root: %s/storage}
authentication:
  plugin: authentication-token
  config: {dsn: {from_env: PALVELLA_BENCH_DSN}}
credential:
  plugin: credential-builtin
  config: {dsn: {from_env: PALVELLA_BENCH_DSN}}
`, shared)
	var fleet []replica
	var addrs []string
	var firstHome string
	for i := range n {
		home, err := os.MkdirTemp("", "palvella-bench-")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "palvella.yaml"), []byte(conf), 0o600); err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			// One management token for all (a loopback server issues its
			// own and revokes the others' otherwise).
			raw, err := os.ReadFile(filepath.Join(firstHome, server.CLIConfigFile))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, server.CLIConfigFile), raw, 0o600); err != nil {
				b.Fatal(err)
			}
		} else {
			firstHome = home
		}
		addr, hooks := loopbackAddr(b), loopbackAddr(b)
		cmd := exec.Command(bin, append([]string{"server", "--listen", addr, "--webhook-listen", hooks, "--workers", "8",
			"--log-level", "warn", "--secret-key-file", keyFile}, args...)...)
		cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home, "PALVELLA_BENCH_DSN="+dsn)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		fleetPIDs[addr] = cmd.Process.Pid
		fleetPG[addr] = pg
		b.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = os.RemoveAll(home)
		})
		c, _ := serverClient(b, home, addr)
		fleet = append(fleet, replica{c: c, hooks: "http://" + hooks + "/hooks/default/hooked/push"})
		addrs = append(addrs, addr)
	}
	ctx := context.Background()
	if _, err := fleet[0].c.SetCredential(ctx, "bench-hook", api.CredentialRequest{Value: hookSecret}); err != nil {
		b.Fatal(err)
	}
	for i, p := range []string{hookPipeline, trivialPipeline} {
		if _, err := fleet[0].c.ApplyPipeline(ctx, api.ApplyRequest{Filename: fmt.Sprintf("p%d.yaml", i), Source: []byte(p)}); err != nil {
			b.Fatal(err)
		}
	}
	if slices.Contains(args, "--no-worker") {
		return fleet, addrs
	}
	// Every replica has seen the pipelines and launched its plugins.
	for _, r := range fleet {
		if err := runAndWait(ctx, r.c); err != nil {
			b.Fatal(err)
		}
	}
	return fleet, addrs
}

// serverClient waits until the server at addr answers its health check,
// then returns a client with the management token the server wrote into
// home's CLI configuration, and the token.
func serverClient(b testing.TB, home, addr string) (*client.Client, string) {
	waitHealthy(b, addr)
	raw, err := os.ReadFile(filepath.Join(home, server.CLIConfigFile))
	if err != nil {
		b.Fatal(err)
	}
	var cc server.CLIConfig
	if err := json.Unmarshal(raw, &cc); err != nil {
		b.Fatal(err)
	}
	c, err := client.New("http://"+addr, cc.Token)
	if err != nil {
		b.Fatal(err)
	}
	return c, cc.Token
}

func waitHealthy(b testing.TB, addr string) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func p50(l latencies) time.Duration {
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkTrivialRunPostgresVsSQLite is a one-job trivial run, API call
// to success, on one server on PostgreSQL and on one on sqlite (the
// default), alternately in the same benchmark; pg-x-sqlite is the ratio
// of their medians (target: under 2).
func BenchmarkTrivialRunPostgresVsSQLite(b *testing.B) {
	lite := startServer(b)
	pg := pgFleet(b, 1)[0].c
	ctx := context.Background()
	if err := runAndWait(ctx, lite); err != nil {
		b.Fatal(err)
	}
	var onLite, onPG latencies
	for b.Loop() {
		for _, side := range []struct {
			c *client.Client
			l *latencies
		}{{lite, &onLite}, {pg, &onPG}} {
			start := time.Now()
			if err := runAndWait(ctx, side.c); err != nil {
				b.Fatal(err)
			}
			*side.l = append(*side.l, time.Since(start))
		}
	}
	b.ReportMetric(float64(p50(onLite).Microseconds()), "sqlite-p50-µs")
	b.ReportMetric(float64(p50(onPG).Microseconds()), "pg-p50-µs")
	b.ReportMetric(float64(p50(onPG))/float64(p50(onLite)), "pg-x-sqlite")
}

// BenchmarkTrivialRun3Replicas is the same run through three replicas on
// one PostgreSQL database, each call to the next replica (as behind a
// load balancer); the job runs on whichever replica leases it. Its median
// is reported next to one sqlite server's, measured alternately.
func BenchmarkTrivialRun3Replicas(b *testing.B) {
	lite := startServer(b)
	fleet := pgFleet(b, 3)
	ctx := context.Background()
	if err := runAndWait(ctx, lite); err != nil {
		b.Fatal(err)
	}
	var onLite, onFleet latencies
	i := 0
	for b.Loop() {
		start := time.Now()
		if err := runAndWait(ctx, fleet[i%len(fleet)].c); err != nil {
			b.Fatal(err)
		}
		onFleet = append(onFleet, time.Since(start))
		i++
		start = time.Now()
		if err := runAndWait(ctx, lite); err != nil {
			b.Fatal(err)
		}
		onLite = append(onLite, time.Since(start))
	}
	b.ReportMetric(float64(p50(onLite).Microseconds()), "sqlite-p50-µs")
	onFleet.report(b)
	b.ReportMetric(float64(p50(onFleet))/float64(p50(onLite)), "x-sqlite")
}

// BenchmarkWebhookToQueued3Replicas is BenchmarkWebhookToQueued through
// three replicas on one PostgreSQL database, each call to the next one,
// with its median as a multiple of the bare handler's in the same run.
func BenchmarkWebhookToQueued3Replicas(b *testing.B) {
	fleet := pgFleet(b, 3)
	hc := &http.Client{}
	for _, r := range fleet {
		if err := postHook(hc, r.hooks); err != nil {
			b.Fatal(err)
		}
	}
	bare := bareP50(b, hc)
	l := make(latencies, 0, b.N)
	i := 0
	for b.Loop() {
		start := time.Now()
		if err := postHook(hc, fleet[i%len(fleet)].hooks); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
		i++
	}
	l.report(b)
	b.ReportMetric(float64(l[len(l)/2])/float64(bare), "p50-x-bare")
}
