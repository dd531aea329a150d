package bench

import (
	"bufio"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

const logLines = 1000000

const millionPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: million
spec:
  jobs:
    - name: print
      actions:
        - name: seq
          run: seq 1000000
`

// BenchmarkSeqBaseline is the baseline of BenchmarkStoredLog: the same
// command with its output thrown away.
func BenchmarkSeqBaseline(b *testing.B) {
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		if err := exec.Command("sh", "-c", "seq 1000000 > /dev/null").Run(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(logLines*b.N)/elapsed.Seconds(), "lines/s")
}

// BenchmarkStoredLog runs a job printing 1,000,000 lines (seq 1000000)
// and reads its stored log back with `run logs`'s API call: the lines per
// second from the run's start to the last line read, with every line
// masked, stored in chunks and read back.
func BenchmarkStoredLog(b *testing.B) {
	c, _ := followServer(b, millionPipeline)
	ctx := context.Background()
	var elapsed, ran time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := c.StartRun(ctx, "default", "million", nil)
		if err != nil {
			b.Fatal(err)
		}
		for !r.Status.Terminal() {
			time.Sleep(5 * time.Millisecond)
			if r, err = c.GetRun(ctx, "default", r.Name); err != nil {
				b.Fatal(err)
			}
		}
		if r.Status != resource.StatusSuccess {
			b.Fatalf("run %s: %s", r.Status, r.Reason)
		}
		ran += time.Since(start)
		rc, err := c.ActionLog(ctx, "default", r.Name, "print", "seq")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			n++
		}
		rc.Close()
		if err := sc.Err(); err != nil || n != logLines {
			b.Fatalf("read %d lines: %v", n, err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(logLines*b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(logLines*b.N)/ran.Seconds(), "stored-lines/s")
}
