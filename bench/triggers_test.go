package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/trigger"
)

const hookSecret = "bench-secret"

const hookPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: hooked
spec:
  params:
    - {name: ref, type: string, default: main}
  triggers:
    - type: webhook
      name: push
      secret: {from_credential: bench-hook}
      params:
        ref: ${{ trigger.payload.ref }}
  jobs:
    - name: one
      actions:
        - name: noop
          run: "true"
`

// followServer runs bin/palvella server with a webhook listener and
// returns a client and the webhook URL of hookPipeline.
func followServer(b *testing.B, pipelines ...string) (*client.Client, string) {
	bin := os.Getenv("PALVELLA_BIN")
	if bin == "" {
		b.Fatal("PALVELLA_BIN is not set: run through `make bench`, which builds bin/palvella first")
	}
	// Not b.TempDir: runs may still be writing their workspaces when the
	// server is stopped.
	home, err := os.MkdirTemp("", "palvella-bench-")
	if err != nil {
		b.Fatal(err)
	}
	addr, hooks := loopbackAddr(b), loopbackAddr(b)
	cmd := exec.Command(bin, "server", "--listen", addr, "--webhook-listen", hooks, "--workers", "8", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(home) // best effort
	})
	c, token := serverClient(b, home, addr)
	benchToken = token
	if _, err := c.SetCredential(context.Background(), "bench-hook", api.CredentialRequest{Value: hookSecret}); err != nil {
		b.Fatal(err)
	}
	for i, p := range append([]string{hookPipeline}, pipelines...) {
		if _, err := c.ApplyPipeline(context.Background(), api.ApplyRequest{Filename: fmt.Sprintf("p%d.yaml", i), Source: []byte(p)}); err != nil {
			b.Fatal(err)
		}
	}
	return c, "http://" + hooks + "/hooks/default/hooked/push"
}

func loopbackAddr(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var hookBody = []byte(`{"ref": "refs/heads/main", "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "repository": {"full_name": "acme/app"}}`)

var deliveries atomic.Int64

// benchToken is the token of the last server followServer started.
var benchToken string

// postHook sends one signed webhook call with a fresh delivery ID.
func postHook(hc *http.Client, url string) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(hookBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", trigger.Sign([]byte(hookSecret), hookBody))
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), deliveries.Add(1)))
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook: %s: %s", resp.Status, body)
	}
	return nil
}

// bareHandler is what a webhook receiver costs at the least: read the
// body, check its HMAC, decode the JSON, answer 202.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !trigger.Verify([]byte(hookSecret), body, r.Header.Get("X-Hub-Signature-256")) {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var v map[string]any
		if json.Unmarshal(body, &v) != nil {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"outcome":"started"}`))
	})
}

// BenchmarkWebhookToQueued is the latency from sending a signed webhook
// call to its answer, which comes once the run is created and its first
// jobs are queued, and its p50 as a multiple of the same call answered by
// bareHandler in the same run.
func BenchmarkWebhookToQueued(b *testing.B) {
	_, url := followServer(b)
	hc := &http.Client{}
	if err := postHook(hc, url); err != nil { // plugins launched
		b.Fatal(err)
	}
	bare := bareP50(b, hc)
	l := make(latencies, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := postHook(hc, url); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	l.report(b) // sorts l
	b.ReportMetric(float64(l[len(l)/2])/float64(bare), "p50-x-bare")
}

// bareP50 is the median latency of 200 calls answered by bareHandler.
func bareP50(b *testing.B, hc *http.Client) time.Duration {
	srv := httptest.NewServer(bareHandler())
	defer srv.Close()
	l := make(latencies, 0, 200)
	for range cap(l) {
		start := time.Now()
		if err := postHook(hc, srv.URL); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[len(l)/2]
}

// BenchmarkWebhookBareHandler is the same call answered by bareHandler.
func BenchmarkWebhookBareHandler(b *testing.B) {
	srv := httptest.NewServer(bareHandler())
	defer srv.Close()
	hc := &http.Client{}
	l := make(latencies, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := postHook(hc, srv.URL); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(start))
	}
	l.report(b)
}

func webhooksPerSecond(b *testing.B, url string) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	if err := postHook(hc, url); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := postHook(hc, url); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "webhooks/s")
}

// BenchmarkSignedWebhooksPerSecond is how many signed calls the listener
// accepts per second, each starting a run, from 8 x GOMAXPROCS senders.
func BenchmarkSignedWebhooksPerSecond(b *testing.B) {
	_, url := followServer(b)
	webhooksPerSecond(b, url)
}

// BenchmarkBareHandlerWebhooksPerSecond is the same load on bareHandler.
func BenchmarkBareHandlerWebhooksPerSecond(b *testing.B) {
	srv := httptest.NewServer(bareHandler())
	defer srv.Close()
	webhooksPerSecond(b, srv.URL)
}

const streamLines = 100000

const chattyPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: chatty
spec:
  jobs:
    - name: talk
      actions:
        - name: lines
          run: seq 1 100000
`

// BenchmarkLogStreaming runs a job printing 100,000 lines with followers
// attached from its start, and reports the lines per second delivered to
// all followers together and to each.
func BenchmarkLogStreaming(b *testing.B) {
	for _, followers := range []int{1, 20} {
		b.Run(fmt.Sprintf("followers=%d", followers), func(b *testing.B) {
			c, _ := followServer(b, chattyPipeline)
			token := benchToken
			ctx := context.Background()
			var delivered int64
			var elapsed time.Duration
			for b.Loop() {
				run, err := c.StartRun(ctx, "default", "chatty", nil)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				var wg sync.WaitGroup
				var got atomic.Int64
				for range followers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						fc, _ := client.New(c.Server(), token, client.WithHTTPClient(&http.Client{Transport: &http.Transport{}}))
						end, err := fc.FollowLogs(ctx, "default", run.Name, "", "", func(api.LogLine) error { got.Add(1); return nil })
						if err != nil || end.Status != resource.StatusSuccess {
							b.Errorf("follow: %v %+v", err, end)
						}
					}()
				}
				wg.Wait()
				elapsed += time.Since(start)
				if n := got.Load(); n < int64(followers*streamLines) {
					b.Fatalf("followers got %d lines, want %d", n, followers*streamLines)
				}
				delivered += got.Load()
			}
			b.ReportMetric(float64(delivered)/elapsed.Seconds(), "lines/s")
			b.ReportMetric(float64(delivered)/float64(followers)/elapsed.Seconds(), "lines/s/follower")
		})
	}
}
