package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
)

// Tests of triggers with the real server: webhooks signed by the test,
// GitHub's own payloads, and an interval trigger across a restart.

// webhookServer starts a server with a webhook listener of its own.
func webhookServer(t *testing.T, home string, args ...string) (*testServer, string) {
	t.Helper()
	hooks := freeAddr(t)
	s := startServer(t, home, append([]string{"--webhook-listen", hooks}, args...)...)
	return s, "http://" + hooks
}

// apiGet reads an API route with the CLI's token.
func (s *testServer) apiGet(path string, out any) {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.home, "cli.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var cc struct{ Token string }
	if err := json.Unmarshal(b, &cc); err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+cc.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		s.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func (s *testServer) records(pipeline string) []resource.TriggerRecord {
	s.t.Helper()
	var p api.Page[resource.TriggerRecord]
	s.apiGet("/api/v1/namespaces/default/triggers/records?pageSize=1000&pipeline="+pipeline, &p)
	return p.Items
}

func (s *testServer) runs(pipeline string) []resource.Run {
	s.t.Helper()
	var p api.Page[resource.Run]
	s.apiGet("/api/v1/namespaces/default/runs?pageSize=1000&pipeline="+pipeline, &p)
	return p.Items
}

type hookReply struct {
	status int
	body   struct {
		Record, Outcome, Run, Error string
	}
}

// hook posts a webhook call; headers are name, value pairs.
func hook(t *testing.T, url string, body []byte, headers ...string) hookReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := hookReply{status: resp.StatusCode}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("webhook reply %d is not JSON: %s", resp.StatusCode, raw)
	}
	return r
}

func hmacOf(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestSignedWebhookStartsCIAndForgedOnesDoNot(t *testing.T) {
	s, hooks := webhookServer(t, "", "--webhook-max-body", "4096")
	const secret = "a webhook secret nobody guesses"
	s.mustCLI("credential", "set", "ci-webhook-secret", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml"))
	url := hooks + "/hooks/default/ci/on-push"

	body := []byte(`{"ref": "refs/heads/feature-42", "after": "abc123"}`)
	r := hook(t, url, body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "delivery-1", "X-GitHub-Event", "push")
	if r.status != http.StatusAccepted || r.body.Outcome != resource.TriggerStarted || r.body.Run == "" {
		t.Fatalf("signed call: %d %+v\n%s", r.status, r.body, s.logTail())
	}
	run := s.waitRun(r.body.Run, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if run.Status != resource.StatusSuccess {
		t.Fatalf("run %s: %s\n%s", run.Name, run.Status, s.mustCLI("run", "logs", run.Name))
	}
	if run.Params["ref"] != "refs/heads/feature-42" || run.Trigger.Type != "webhook" || run.Trigger.Name != "on-push" || run.Trigger.Record != r.body.Record {
		t.Errorf("run params %v trigger %+v", run.Params, run.Trigger)
	}
	if logs := s.mustCLI("run", "logs", run.Name, "--job", "report"); !strings.Contains(logs, "test finished with status success") {
		t.Errorf("report log:\n%s", logs)
	}

	// Refused calls: each gets its status, no run, and a record saying why.
	big := []byte(`{"ref": "` + strings.Repeat("x", 5000) + `"}`)
	other := []byte(`{"ref": "refs/heads/evil"}`)
	cases := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		why     string
	}{
		{"unsigned", other, []string{"X-GitHub-Delivery", "delivery-2"}, http.StatusUnauthorized, "unsigned"},
		{"wrongly signed", other, []string{"X-Hub-Signature-256", hmacOf("not the secret", other), "X-GitHub-Delivery", "delivery-3"}, http.StatusUnauthorized, "signature does not match"},
		{"signed for another body", other, []string{"X-Palvella-Signature-256", hmacOf(secret, body), "X-Palvella-Delivery", "delivery-4"}, http.StatusUnauthorized, "signature does not match"},
		{"garbage signature", other, []string{"X-Hub-Signature-256", "sha256=zz", "X-GitHub-Delivery", "delivery-5"}, http.StatusUnauthorized, "signature does not match"},
		{"oversized", big, []string{"X-Hub-Signature-256", hmacOf(secret, big), "X-GitHub-Delivery", "delivery-6"}, http.StatusRequestEntityTooLarge, "larger than the 4096 bytes"},
		{"replayed", body, []string{"X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "delivery-1"}, http.StatusConflict, "replayed: delivery delivery-1"},
		{"no delivery id", other, []string{"X-Hub-Signature-256", hmacOf(secret, other)}, http.StatusBadRequest, "needs a delivery ID"},
	}
	for _, c := range cases {
		r := hook(t, url, c.body, c.headers...)
		if r.status != c.status || r.body.Outcome != resource.TriggerRejected || r.body.Run != "" || r.body.Record == "" {
			t.Errorf("%s: %d %+v, want %d and a rejected record", c.name, r.status, r.body, c.status)
			continue
		}
		var rec resource.TriggerRecord
		s.apiGet("/api/v1/namespaces/default/triggers/records/"+r.body.Record, &rec)
		if rec.Outcome != resource.TriggerRejected || !strings.Contains(rec.Reason, c.why) || len(rec.Runs) != 0 {
			t.Errorf("%s: record %+v, want rejected because %q", c.name, rec, c.why)
		}
	}
	// A call for no pipeline is recorded and dropped.
	r = hook(t, hooks+"/hooks/default/nothing-here/on-push", body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "delivery-7")
	if r.status != http.StatusNotFound || r.body.Outcome != resource.TriggerDropped {
		t.Errorf("no pipeline: %d %+v", r.status, r.body)
	}

	if runs := s.runs("ci"); len(runs) != 1 {
		t.Fatalf("%d runs of ci, want only the signed call's", len(runs))
	}
	var started, rejected int
	for _, rec := range s.records("ci") {
		switch rec.Outcome {
		case resource.TriggerStarted:
			started++
			if rec.DeliveryID != "delivery-1" || len(rec.Runs) != 1 || rec.Runs[0] != run.Name || rec.Params["ref"] != "refs/heads/feature-42" || rec.Headers["x-github-event"] != "push" {
				t.Errorf("started record %+v", rec)
			}
		case resource.TriggerRejected:
			rejected++
		}
	}
	if started != 1 || rejected != len(cases) {
		t.Errorf("records of ci: %d started, %d rejected; want 1 and %d", started, rejected, len(cases))
	}
}

// GitHub's recorded payloads (testdata/github, from @octokit/webhooks-examples)
// map to params through the triggers' expressions.
func TestGitHubPayloadsMapToParams(t *testing.T) {
	s, hooks := webhookServer(t, "")
	file := filepath.Join(t.TempDir(), "gh.yaml")
	const secret = "gh-secret"
	if err := os.WriteFile(file, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: gh
spec:
  params:
    - {name: ref, type: string}
    - {name: event, type: string}
    - {name: detail, type: string, default: ""}
  triggers:
    - type: webhook
      name: push
      secret: {from_credential: gh-secret}
      params:
        ref: ${{ trigger.payload.ref }}
        event: ${{ trigger.headers["x-github-event"] }}
        detail: ${{ trigger.payload.after }}
    - type: webhook
      name: pull-request
      secret: {from_credential: gh-secret}
      params:
        ref: ${{ trigger.payload.pull_request.head.ref }}
        event: ${{ trigger.headers["x-github-event"] }}/${{ trigger.payload.action }}
        detail: "#${{ trigger.payload.pull_request.number }}"
    - type: webhook
      name: release
      secret: {from_credential: gh-secret}
      params:
        ref: refs/tags/${{ trigger.payload.release.tag_name }}
        event: ${{ trigger.headers["x-github-event"] }}/${{ trigger.payload.action }}
        detail: ${{ trigger.payload.repository.full_name }}
  jobs:
    - name: show
      actions:
        - name: echo
          run: echo "${{ params.event }} ${{ params.ref }} ${{ params.detail }}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("credential", "set", "gh-secret", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", file)
	cases := []struct {
		trigger, event, file    string
		ref, eventParam, detail string
	}{
		{"push", "push", "push.json", "refs/tags/simple-tag", "push", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"},
		{"pull-request", "pull_request", "pull_request.json", "changes", "pull_request/opened", "#2"},
		{"release", "release", "release.json", "refs/tags/0.0.1", "release/published", "Codertocat/Hello-World"},
	}
	for i, c := range cases {
		body, err := os.ReadFile(filepath.Join("testdata", "github", c.file))
		if err != nil {
			t.Fatal(err)
		}
		r := hook(t, hooks+"/hooks/default/gh/"+c.trigger, body, "X-Hub-Signature-256", hmacOf(secret, body),
			"X-GitHub-Delivery", fmt.Sprintf("gh-%d", i), "X-GitHub-Event", c.event)
		if r.status != http.StatusAccepted {
			t.Errorf("%s: %d %+v", c.file, r.status, r.body)
			continue
		}
		run := s.waitRun(r.body.Run, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		if run.Params["ref"] != c.ref || run.Params["event"] != c.eventParam || run.Params["detail"] != c.detail {
			t.Errorf("%s: params %v, want ref %q event %q detail %q", c.file, run.Params, c.ref, c.eventParam, c.detail)
		}
		want := c.eventParam + " " + c.ref + " " + c.detail
		if logs := s.mustCLI("run", "logs", run.Name); !strings.Contains(logs, want) {
			t.Errorf("%s: log does not say %q:\n%s", c.file, want, logs)
		}
	}
}

func TestIntervalTriggerFiresAcrossARestartWithoutDoubleRuns(t *testing.T) {
	home := t.TempDir()
	s, _ := webhookServer(t, home, "--min-interval", "1s")
	file := filepath.Join(t.TempDir(), "tick.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: tick
spec:
  triggers:
    - type: interval
      name: every-2s
      every: 2s
  jobs:
    - name: one
      actions:
        - name: echo
          run: echo "tick ${{ trigger.type }} ${{ trigger.name }}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)
	waitRuns := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for len(s.runs("tick")) < n {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d runs of tick:\n%s", n, s.logTail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRuns(2)
	before := len(s.runs("tick"))
	s.stop(syscall.SIGTERM)
	time.Sleep(3 * time.Second) // at least one due time passes while the server is down
	s.start("--webhook-listen", freeAddr(t), "--min-interval", "1s")
	waitRuns(before + 2)

	runs := s.runs("tick")
	recs := s.records("tick")
	dues := map[time.Time]string{}
	byRun := map[string]int{}
	for _, rec := range recs {
		if rec.Outcome != resource.TriggerStarted || rec.Type != "interval" || rec.Due == nil || len(rec.Runs) != 1 {
			t.Errorf("record %+v", rec)
			continue
		}
		if other, dup := dues[rec.Due.UTC()]; dup {
			t.Errorf("due time %s fired twice: records %s and %s", rec.Due, other, rec.Name)
		}
		dues[rec.Due.UTC()] = rec.Name
		byRun[rec.Runs[0]]++
	}
	for _, r := range runs {
		if r.Trigger.Type != "interval" || byRun[r.Name] != 1 {
			t.Errorf("run %s: trigger %+v, %d records", r.Name, r.Trigger, byRun[r.Name])
		}
	}
	if len(byRun) != len(runs) {
		t.Errorf("%d runs but %d started records", len(runs), len(byRun))
	}
	if logs := s.mustCLI("run", "logs", runs[0].Name); !strings.Contains(logs, "tick interval every-2s") {
		t.Errorf("log:\n%s", logs)
	}
}
