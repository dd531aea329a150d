package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/palvella/palvella/core/resource"
)

const onePushPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: pushed
spec:
  triggers:
    - type: webhook
      name: push
      secret: {from_credential: push-secret}
  jobs:
    - name: one
      actions:
        - name: noop
          run: "true"
`

// postHooks sends n signed calls at once, with the delivery IDs id(i), and
// returns their statuses.
func postHooks(t *testing.T, url, secret string, n int, id func(int) string) []int {
	t.Helper()
	body := []byte(`{"ref": "refs/heads/main"}`)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", hmacOf(secret, body))
			req.Header.Set("X-GitHub-Delivery", id(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	return statuses
}

// A webhook's run and its record are written together: calls racing with
// one delivery ID start one run between them, and calls with different IDs
// each start their own, numbered without gaps or repeats.
func TestRacingWebhookDeliveriesStartOneRunPerDelivery(t *testing.T) {
	s, hooks := webhookServer(t, "")
	const secret = "racing secret"
	s.mustCLI("credential", "set", "push-secret", "--value", secret)
	file := filepath.Join(t.TempDir(), "pushed.yaml")
	if err := os.WriteFile(file, []byte(onePushPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)
	url := hooks + "/hooks/default/pushed/push"

	same := postHooks(t, url, secret, 8, func(int) string { return "same-delivery" })
	sort.Ints(same)
	if want := []int{202, 409, 409, 409, 409, 409, 409, 409}; fmt.Sprint(same) != fmt.Sprint(want) {
		t.Fatalf("8 calls with one delivery ID answered %v, want one 202 and seven 409\n%s", same, s.logTail())
	}
	if runs := s.runs("pushed"); len(runs) != 1 {
		t.Fatalf("8 calls with one delivery ID started %d runs, want 1", len(runs))
	}

	distinct := postHooks(t, url, secret, 8, func(i int) string { return fmt.Sprintf("delivery-%d", i) })
	for i, st := range distinct {
		if st != http.StatusAccepted {
			t.Errorf("call with delivery-%d answered %d, want 202", i, st)
		}
	}
	runs := s.runs("pushed")
	var numbers []int
	for _, r := range runs {
		numbers = append(numbers, int(r.Number))
	}
	sort.Ints(numbers)
	if fmt.Sprint(numbers) != fmt.Sprint([]int{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("runs after 9 deliveries are numbered %v, want 1 to 9", numbers)
	}
	started := 0
	for _, rec := range s.records("pushed") {
		if rec.Outcome == resource.TriggerStarted {
			started++
			if len(rec.Runs) != 1 {
				t.Errorf("record %s started runs %v, want one", rec.Name, rec.Runs)
			}
		}
	}
	if started != 9 {
		t.Errorf("%d records say a run started, want 9", started)
	}
	for _, r := range runs {
		s.waitRun(r.Name, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	}
}

const oneAtATimePushPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: queued-push
spec:
  concurrency: 1
  triggers:
    - type: webhook
      name: push
      secret: {from_credential: push-secret}
  jobs:
    - name: work
      actions:
        - name: sleep
          run: sleep 1
`

// A webhook run of a pipeline that allows one run at a time waits, pending,
// while another runs, and starts when it ends.
func TestWebhookRunWaitsForThePipelinesConcurrencyLimit(t *testing.T) {
	s, hooks := webhookServer(t, "")
	const secret = "queued secret"
	s.mustCLI("credential", "set", "push-secret", "--value", secret)
	file := filepath.Join(t.TempDir(), "queued-push.yaml")
	if err := os.WriteFile(file, []byte(oneAtATimePushPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)
	url := hooks + "/hooks/default/queued-push/push"
	for i := range 2 {
		if st := postHooks(t, url, secret, 1, func(int) string { return fmt.Sprintf("queued-%d", i) }); st[0] != http.StatusAccepted {
			t.Fatalf("call %d answered %d, want 202", i, st[0])
		}
	}
	if first := s.run("queued-push-1"); !first.Status.Terminal() {
		if r := s.run("queued-push-2"); r.Status != resource.StatusPending || !strings.Contains(r.Reason, "waiting for one of the 1 runs") {
			if first = s.run("queued-push-1"); !first.Status.Terminal() {
				t.Fatalf("second run while the first runs: %s %q, want pending", r.Status, r.Reason)
			}
		}
	}
	first := s.waitRun("queued-push-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	second := s.waitRun("queued-push-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if first.Status != resource.StatusSuccess || second.Status != resource.StatusSuccess {
		t.Fatalf("runs: %s, %s", first.Status, second.Status)
	}
	if second.StartedAt.Before(*first.FinishedAt) {
		t.Fatalf("the second run started at %s, before the first ended at %s", second.StartedAt, first.FinishedAt)
	}
}
