package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
)

// fanPipeline is a fan-out/fan-in of n `true` jobs between a first and a
// last job: n+2 jobs in all.
func fanPipeline(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: %s\nspec:\n  jobs:\n", name)
	b.WriteString("    - name: first\n      actions:\n        - name: noop\n          run: \"true\"\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: j%d\n      requires: [first]\n      actions:\n        - name: noop\n          run: \"true\"\n", i)
	}
	b.WriteString("    - name: last\n      requires: [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "j%d", i)
	}
	b.WriteString("]\n      actions:\n        - name: noop\n          run: \"true\"\n")
	return b.String()
}

// compactFan is fanPipeline written in YAML's flow style, so that 10,000
// jobs fit in the API's 1 MiB.
func compactFan(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: %s\nspec:\n  jobs:\n", name)
	b.WriteString("    - {name: a, actions: [{name: n, run: \"true\"}]}\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {name: j%d, requires: [a], actions: [{name: n, run: \"true\"}]}\n", i)
	}
	b.WriteString("    - name: z\n      requires: [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "j%d", i)
	}
	b.WriteString("]\n      actions: [{name: n, run: \"true\"}]\n")
	return b.String()
}

// serverPIDs are the process IDs of the servers scaleServer started, by
// home.
var serverPIDs = map[string]int{}

// scaleServer runs bin/palvella server on a fresh home and returns a
// client and the home.
func scaleServer(b *testing.B, args ...string) (*client.Client, string) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	home, err := os.MkdirTemp("", "palvella-bench-")
	if err != nil {
		b.Fatal(err)
	}
	addr, hooks := loopbackAddr(b), loopbackAddr(b)
	cmd := exec.Command(bin, append([]string{"server", "--listen", addr, "--webhook-listen", hooks, "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	serverPIDs[home] = cmd.Process.Pid
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(home)
	})
	c, _ := serverClient(b, home, addr)
	return c, home
}

func apply(b *testing.B, c *client.Client, src string) {
	b.Helper()
	if _, err := c.ApplyPipeline(context.Background(), api.ApplyRequest{Filename: "p.yaml", Source: []byte(src)}); err != nil {
		b.Fatal(err)
	}
}

// runPipeline starts a run and polls its summary every poll until it
// ends successfully; it returns the time from the call to the end.
func runPipeline(b *testing.B, c *client.Client, pipeline string, poll time.Duration) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	r, err := c.StartRun(ctx, "default", pipeline, nil)
	if err != nil {
		b.Fatal(err)
	}
	for {
		// Newest first: the run started last is on the first page. A small
		// page keeps the polling's own cost out of what is measured.
		page, err := c.ListRuns(ctx, "default", pipeline, api.PageRequest{Size: 5})
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range page.Items {
			if x.Name == r.Name && x.Status.Terminal() {
				if x.Status != resource.StatusSuccess {
					b.Fatalf("run %s ended %s: %s", x.Name, x.Status, x.Reason)
				}
				return time.Since(start)
			}
		}
		time.Sleep(poll)
	}
}

// dbBytes is the size of the server's database (its pages, including the
// ones still in the write-ahead log).
func dbBytes(b *testing.B, home string) int64 {
	b.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(home, "palvella.db")+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pages, size int64
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return pages * size
}

// BenchmarkFanOutFanIn runs fan-out/fan-in pipelines of `true` jobs end to
// end (API call to success, 8 workers), next to a one-job run in the same
// server as the baseline, and reports the time per job and how the
// database grew. The op is one run of the largest pipeline.
func BenchmarkFanOutFanIn(b *testing.B) {
	c, home := scaleServer(b, "--workers", "8")
	apply(b, c, trivialPipeline)
	for _, n := range []int{100, 1000} {
		apply(b, c, fanPipeline(fmt.Sprintf("fan%d", n), n-2))
	}
	runPipeline(b, c, "trivial", time.Millisecond) // plugins launched, caches warm
	var one time.Duration
	for range 20 {
		one += runPipeline(b, c, "trivial", time.Millisecond)
	}
	one /= 20
	small := runPipeline(b, c, "fan100", 10*time.Millisecond)
	sh := time.Now()
	for range 100 {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	shTrue := time.Since(sh) / 100
	before, rev := dbBytes(b, home), lastRevision(b, home)
	cpuBefore := processCPU(serverPIDs[home])
	var total time.Duration
	runs := 0
	for b.Loop() {
		total += runPipeline(b, c, "fan1000", 50*time.Millisecond)
		runs++
	}
	cpuAfter := processCPU(serverPIDs[home])
	grown := dbBytes(b, home) - before
	jobWrites := jobWritesAfter(b, home, rev)
	perJob := float64(total.Microseconds()) / 1000 / float64(runs) / 1000
	// Reported after the loop: b.Loop resets what is reported before it.
	b.ReportMetric(float64(one.Microseconds())/1000, "ms/1-job-run")
	b.ReportMetric(float64(shTrue.Microseconds())/1000, "ms/sh-true")
	b.ReportMetric(float64(small.Microseconds())/1000/100, "ms/job@100")
	b.ReportMetric(perJob, "ms/job@1000")
	b.ReportMetric(perJob/(float64(one.Microseconds())/1000), "job@1000/1-job-run")
	b.ReportMetric(float64(grown)/float64(runs)/(1<<20), "db-MiB/1000-job-run")
	b.ReportMetric(float64(jobWrites)/float64(runs*1000), "job-writes/job")
	// CPU time a job, by process: robust where the wall time is not (a
	// loaded machine). "jobs" is the job's own processes (the engine's
	// waited children), "all" every process of the server's tree.
	perJobCPU := func(part string) float64 {
		return float64((cpuAfter[part] - cpuBefore[part]).Microseconds()) / 1000 / float64(runs*1000)
	}
	for _, part := range []string{"all", "server", "database-sqlite", "engine-local", "jobs", "action-standard"} {
		b.ReportMetric(perJobCPU(part), "cpu-ms/job-"+part)
	}
}

// processCPU is the CPU time of a server's process tree, by part: the
// server itself, each plugin it started (by name, its own time), "jobs"
// (what the plugins' waited children used: the jobs' processes, under the
// engine) and "all".
func processCPU(server int) map[string]time.Duration {
	const tick = 100.0 // USER_HZ on Linux
	out := map[string]time.Duration{}
	stat := func(pid int) (ppid int, own, children float64, ok bool) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, 0, false
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		if len(f) < 15 {
			return 0, 0, 0, false
		}
		ppid, _ = strconv.Atoi(f[1])
		v := func(i int) float64 { x, _ := strconv.ParseFloat(f[i], 64); return x }
		return ppid, v(11) + v(12), v(13) + v(14), true
	}
	d := func(ticks float64) time.Duration { return time.Duration(ticks / tick * float64(time.Second)) }
	_, own, _, ok := stat(server)
	if !ok {
		return out
	}
	out["server"] = d(own)
	out["all"] = treeCPU([]int{server})
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, own, children, ok := stat(pid)
		if !ok || ppid != server {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) >= 4 && args[1] == "plugin" && args[2] == "serve" {
			out[args[3]] += d(own)
			out["jobs"] += d(children)
		}
	}
	return out
}

// lastRevision is the newest revision in the server's change history.
func lastRevision(b *testing.B, home string) int64 {
	b.Helper()
	var rev int64
	queryDB(b, home, `SELECT coalesce(max(revision), 0) FROM changes`, &rev)
	return rev
}

// jobWritesAfter counts the writes of job documents after revision rev
// (each write is a change in the history).
func jobWritesAfter(b *testing.B, home string, rev int64) int64 {
	b.Helper()
	var n int64
	queryDB(b, home, `SELECT count(*) FROM changes WHERE kind = 'Job' AND revision > ?`, &n, rev)
	return n
}

// queryDB reads one value from the server's sqlite database.
func queryDB(b *testing.B, home, q string, out any, args ...any) {
	b.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(home, "palvella.db")+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(q, args...).Scan(out); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDBGrowthPerTrivialRun runs trivial runs and reports how much
// the database grew per run, with the change history at its default
// limit (the first runs fill it) and once it is full.
func BenchmarkDBGrowthPerTrivialRun(b *testing.B) {
	c, home := scaleServer(b, "--workers", "4")
	apply(b, c, trivialPipeline)
	runPipeline(b, c, "trivial", time.Millisecond)
	before := dbBytes(b, home)
	runs := 0
	for b.Loop() {
		runPipeline(b, c, "trivial", time.Millisecond)
		runs++
	}
	b.ReportMetric(float64(dbBytes(b, home)-before)/float64(runs), "db-B/run")
}

// BenchmarkDBGrowthPerTrivialRunSteady is the same once the change
// history has reached its count (history_changes, here 300), which it
// keeps from then on: what a long-running server's database grows by.
func BenchmarkDBGrowthPerTrivialRunSteady(b *testing.B) {
	conf, err := os.CreateTemp("", "palvella-bench-*.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(conf.Name()) })
	if _, err := conf.WriteString("apiVersion: palvella.dev/v1\nkind: ServerConfig\ndatabase:\n  plugin: database-sqlite\n  config: {history_changes: 300}\n"); err != nil {
		b.Fatal(err)
	}
	conf.Close()
	c, home := scaleServer(b, "--workers", "4", "--config", conf.Name())
	apply(b, c, trivialPipeline)
	for range 100 { // about ten changes a run: the history is at its count
		runPipeline(b, c, "trivial", time.Millisecond)
	}
	before := dbBytes(b, home)
	runs := 0
	for b.Loop() {
		runPipeline(b, c, "trivial", time.Millisecond)
		runs++
	}
	b.ReportMetric(float64(dbBytes(b, home)-before)/float64(runs), "db-B/run")
}

// BenchmarkStartCancelDelete10000 starts a run of a 10,000-job pipeline
// (fan-out/fan-in), cancels it, and deletes the pipeline with its run.
func BenchmarkStartCancelDelete10000(b *testing.B) {
	c, _ := scaleServer(b, "--workers", "4")
	ctx := context.Background()
	src := compactFan("huge", 9998)
	var start, cancel, del time.Duration
	for b.Loop() {
		apply(b, c, src)
		t0 := time.Now()
		r, err := c.StartRun(ctx, "default", "huge", nil)
		if err != nil {
			b.Fatal(err)
		}
		start += time.Since(t0)
		// Let the fan-out happen: the first job ends, 9,998 are queued.
		for {
			got, err := c.GetRun(ctx, "default", r.Name)
			if err != nil {
				b.Fatal(err)
			}
			if got.Job("a").Status.Terminal() {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t1 := time.Now()
		if _, err := c.CancelRun(ctx, "default", r.Name, "bench"); err != nil {
			b.Fatal(err)
		}
		cancel += time.Since(t1)
		t2 := time.Now()
		if err := c.DeletePipeline(ctx, "default", "huge"); err != nil {
			b.Fatal(err)
		}
		del += time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(start.Seconds()/n, "s/start")
	b.ReportMetric(cancel.Seconds()/n, "s/cancel")
	b.ReportMetric(del.Seconds()/n, "s/delete")
}
