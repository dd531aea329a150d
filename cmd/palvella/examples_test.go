package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// The acceptance scenarios: the pipeline files of examples/ (the project's
// copies of the shared scenarios, checked to be identical when the shared
// folder is beside the repository) run unchanged against the real server
// through the real CLI.

func exampleFile(t *testing.T, rel string) string {
	t.Helper()
	path := filepath.Join(repoRoot, "examples", rel)
	shared := filepath.Join(repoRoot, "..", "shared", "examples", rel)
	if want, err := os.ReadFile(shared); err == nil {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("examples/%s differs from the shared scenario %s", rel, shared)
		}
	}
	if strings.HasSuffix(rel, ".yaml") {
		return path
	}
	return readableCopy(t, path) // a fixture a job reads
}

func (s *testServer) run(name string) *resource.Run {
	s.t.Helper()
	var r resource.Run
	if err := json.Unmarshal([]byte(s.mustCLI("run", "get", name, "-o", "json")), &r); err != nil {
		s.t.Fatalf("run get -o json: %v", err)
	}
	return &r
}

// waitRun polls a run until cond holds.
func (s *testServer) waitRun(name string, what string, cond func(*resource.Run) bool) *resource.Run {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.run(name)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s never became %s; it is %s:\n%s", name, what, r.Status, s.mustCLI("run", "get", name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jobStatuses(r *resource.Run) map[string]resource.Status {
	out := map[string]resource.Status{}
	for _, j := range r.Jobs {
		out[j.Name] = j.Status
	}
	return out
}

func actionOf(t *testing.T, r *resource.Run, job, action string) *resource.ActionStatus {
	t.Helper()
	j := r.Job(job)
	if j == nil || j.Action(action) == nil {
		t.Fatalf("run %s has no action %s/%s", r.Name, job, action)
	}
	return j.Action(action)
}

func TestExampleCI(t *testing.T) { exampleCI(t, startServer(t, "")) }

func exampleCI(t *testing.T, s *testServer) {
	t.Helper()
	if out := s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml")); !strings.Contains(out, "created") {
		t.Fatalf("apply: %s", out)
	}
	if out := s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml")); !strings.Contains(out, "unchanged") {
		t.Fatalf("second apply of the same content: %s, want unchanged", out)
	}
	s.mustCLI("pipeline", "run", "ci", "-p", "ref=refs/heads/feature-x", "--wait")
	r := s.run("ci-1")
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run ci-1 = %s", r.Status)
	}
	// The artifact written by build is read by test: test greps it for the ref.
	if got := jobStatuses(r); got["build"] != resource.StatusSuccess || got["test"] != resource.StatusSuccess || got["report"] != resource.StatusSuccess {
		t.Fatalf("jobs = %v", got)
	}
	logs := s.mustCLI("run", "logs", "ci-1", "--job", "report")
	if !strings.Contains(logs, "test finished with status success") {
		t.Fatalf("report log:\n%s", logs)
	}
	for _, tr := range r.Transitions {
		if tr.At.IsZero() {
			t.Errorf("transition to %s has no time", tr.Status)
		}
	}
}

func TestExampleAlpineCheck(t *testing.T) { exampleAlpineCheck(t, startServer(t, "")) }

func exampleAlpineCheck(t *testing.T, s *testServer) {
	t.Helper()
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "alpine-check/pipeline.yaml"))

	// A Slack-format sink on loopback.
	var mu sync.Mutex
	var posts []map[string]any
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		posts = append(posts, m)
		mu.Unlock()
	}))
	defer sink.Close()

	// 3.18: success, no notification.
	s.mustCLI("pipeline", "run", "alpine-version-check", "-p", "os_release_file="+exampleFile(t, "alpine-check/os-release-3.18"), "-p", "notify_url="+sink.URL, "--wait")
	r := s.run("alpine-version-check-1")
	if r.Status != resource.StatusSuccess {
		t.Fatalf("3.18: run = %s", r.Status)
	}
	if a := actionOf(t, r, "check-version", "version_match_success"); a.Status != resource.StatusSuccess {
		t.Fatalf("3.18: compare = %s", a.Status)
	}
	if a := actionOf(t, r, "check-version", "report_error"); a.Status == resource.StatusSuccess {
		t.Fatalf("3.18: notify ran")
	}

	// 3.19: the notification reaches the sink, the job fails.
	_, _, code := s.cli("pipeline", "run", "alpine-version-check", "-p", "os_release_file="+exampleFile(t, "alpine-check/os-release-3.19"), "-p", "notify_url="+sink.URL, "--wait")
	if code == 0 {
		t.Fatalf("3.19: --wait exited 0 for a failed run")
	}
	r = s.run("alpine-version-check-2")
	if r.Status != resource.StatusFailure || r.Job("check-version").Status != resource.StatusFailure {
		t.Fatalf("3.19: run = %s", r.Status)
	}
	if a := actionOf(t, r, "check-version", "fail"); !strings.Contains(a.Message, "Alpine version 3.19.1 is not 3.18.0") {
		t.Fatalf("3.19: fail message = %q", a.Message)
	}
	mu.Lock()
	if len(posts) != 1 || posts[0]["text"] != "Alpine version check did not match 3.18.0" {
		t.Fatalf("3.19: sink received %v, want one Slack message", posts)
	}
	mu.Unlock()

	// This machine's own /etc/os-release: no Alpine VERSION_ID of 3.18.0.
	s.cli("pipeline", "run", "alpine-version-check", "--wait")
	r = s.run("alpine-version-check-3")
	if r.Status != resource.StatusFailure {
		t.Fatalf("/etc/os-release: run = %s", r.Status)
	}
}

func TestExampleTerraform(t *testing.T) { exampleTerraform(t, startServer(t, "")) }

func exampleTerraform(t *testing.T, s *testServer) {
	t.Helper()
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "terraform/pipeline.yaml"))
	stub := "terraform_binary=" + exampleFile(t, "terraform/terraform-stub.sh")

	// nonprod: no changes, approval skipped, apply uses the stored plan, prod skipped.
	s.mustCLI("pipeline", "run", "deploy-terraform", "-p", "environment=nonprod", "-p", stub, "--wait")
	r := s.run("deploy-terraform-1")
	got := jobStatuses(r)
	want := map[string]resource.Status{
		"terraform-nonprod-plan": resource.StatusSuccess, "terraform-nonprod-approve": resource.StatusSuccess, "terraform-nonprod-apply": resource.StatusSuccess,
		"terraform-prod-plan": resource.StatusSkipped, "terraform-prod-approve": resource.StatusSkipped, "terraform-prod-apply": resource.StatusSkipped,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("nonprod: job %s = %s, want %s", k, got[k], v)
		}
	}
	if changed := r.Job("terraform-nonprod-plan").Outputs["changed"]; changed != false {
		t.Errorf("nonprod plan: changed = %v, want false", changed)
	}
	if a := actionOf(t, r, "terraform-nonprod-approve", "approve"); a.Status != resource.StatusSkipped {
		t.Errorf("nonprod approval = %s, want skipped", a.Status)
	}
	if logs := s.mustCLI("run", "logs", "deploy-terraform-1", "--job", "terraform-nonprod-apply"); !strings.Contains(logs, "Applying plan for nonprod: no changes") {
		t.Errorf("nonprod apply did not use the stored plan:\n%s", logs)
	}

	// prod: the approval holds the run until approved.
	s.mustCLI("pipeline", "run", "deploy-terraform", "-p", "environment=prod", "-p", stub)
	s.waitRun("deploy-terraform-2", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting })
	time.Sleep(200 * time.Millisecond)
	if r := s.run("deploy-terraform-2"); r.Job("terraform-prod-apply").Status != resource.StatusPending {
		t.Fatalf("prod apply ran before approval: %s", r.Job("terraform-prod-apply").Status)
	}
	s.mustCLI("run", "approve", "deploy-terraform-2")
	r = s.waitRun("deploy-terraform-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess || r.Job("terraform-prod-apply").Status != resource.StatusSuccess {
		t.Fatalf("prod after approval: run %s, apply %s", r.Status, r.Job("terraform-prod-apply").Status)
	}
	if logs := s.mustCLI("run", "logs", "deploy-terraform-2", "--job", "terraform-prod-apply"); !strings.Contains(logs, "Applying plan for prod: 2 to add") {
		t.Errorf("prod apply log:\n%s", logs)
	}

	// prod, rejected: the run fails.
	s.mustCLI("pipeline", "run", "deploy-terraform", "-p", "environment=prod", "-p", stub)
	s.waitRun("deploy-terraform-3", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting })
	s.mustCLI("run", "reject", "deploy-terraform-3")
	r = s.waitRun("deploy-terraform-3", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusFailure || r.Job("terraform-prod-apply").Status != resource.StatusSkipped {
		t.Fatalf("prod rejected: run %s, apply %s", r.Status, r.Job("terraform-prod-apply").Status)
	}
}
