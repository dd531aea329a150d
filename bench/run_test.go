package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
)

const trivialPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: trivial
spec:
  jobs:
    - name: one
      actions:
        - name: noop
          run: "true"
`

// startServer runs bin/palvella server on a fresh home, with the trivial
// pipeline applied, and returns a client (followServer, in triggers_test.go).
func startServer(b *testing.B) *client.Client {
	c, _ := followServer(b, trivialPipeline)
	return c
}

// runAndWait starts a trivial run and polls until it ends.
func runAndWait(ctx context.Context, c *client.Client) error {
	r, err := c.StartRun(ctx, "default", "trivial", nil)
	if err != nil {
		return err
	}
	for {
		r, err = c.GetRun(ctx, "default", r.Name)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			if r.Status != resource.StatusSuccess {
				return fmt.Errorf("run %s ended %s: %s", r.Name, r.Status, r.Reason)
			}
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkShTrue is the baseline of a trivial run: the same script run
// directly with sh -c.
func BenchmarkShTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrivialRun is a one-job, one-action run from the API call that
// starts it to the moment a poller sees it succeed.
func BenchmarkTrivialRun(b *testing.B) {
	c := startServer(b)
	ctx := context.Background()
	if err := runAndWait(ctx, c); err != nil { // plugins launched, caches warm
		b.Fatal(err)
	}
	l := make(latencies, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := runAndWait(ctx, c); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	l.report(b)
}

// BenchmarkRunThroughput starts trivial runs from 16 clients at once and
// reports how many complete per second.
func BenchmarkRunThroughput(b *testing.B) {
	c := startServer(b)
	ctx := context.Background()
	if err := runAndWait(ctx, c); err != nil {
		b.Fatal(err)
	}
	const clients = 16
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	per := (b.N + clients - 1) / clients
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := runAndWait(ctx, c); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "runs/s")
}
