package orchestrator

import (
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

func newRun(p *plan) *resource.Run {
	r := &resource.Run{Meta: resource.Meta{Name: "x-1", Namespace: "default"}, Pipeline: "x", Status: resource.StatusPending,
		Params: map[string]any{"environment": "nonprod"}}
	for _, j := range p.Jobs {
		r.Jobs = append(r.Jobs, resource.JobStatus{Name: j.Name, Status: resource.StatusPending})
	}
	return r
}

func finish(t *testing.T, r *resource.Run, job string, st resource.Status) {
	t.Helper()
	j := r.Job(job)
	if j.Status != resource.StatusQueued {
		t.Fatalf("finishing %s which is %s, not queued", job, j.Status)
	}
	setJob(j, st, "", time.Now())
}

func statuses(r *resource.Run) map[string]resource.Status {
	out := map[string]resource.Status{}
	for _, j := range r.Jobs {
		out[j.Name] = j.Status
	}
	return out
}

func TestAdvanceRunsParallelBranchesAndJoins(t *testing.T) {
	p := &plan{Jobs: []planJob{
		{Name: "build"},
		{Name: "unit", Requires: []string{"build"}},
		{Name: "lint", Requires: []string{"build"}},
		{Name: "deploy", Requires: []string{"unit", "lint"}},
	}}
	r := newRun(p)
	now := time.Now()
	if q := advance(r, p, exprEval{}, now); len(q) != 1 || q[0] != "build" {
		t.Fatalf("first queued = %v, want [build]", q)
	}
	if r.Status != resource.StatusRunning || r.StartedAt == nil {
		t.Fatalf("run = %s, want running with a start time", r.Status)
	}
	finish(t, r, "build", resource.StatusSuccess)
	if q := advance(r, p, exprEval{}, now); len(q) != 2 {
		t.Fatalf("after build: queued %v, want unit and lint in parallel", q)
	}
	finish(t, r, "unit", resource.StatusSuccess)
	if q := advance(r, p, exprEval{}, now); len(q) != 0 {
		t.Fatalf("deploy queued before lint ended: %v", q)
	}
	finish(t, r, "lint", resource.StatusSuccess)
	if q := advance(r, p, exprEval{}, now); len(q) != 1 || q[0] != "deploy" {
		t.Fatalf("after lint: %v, want [deploy]", q)
	}
	finish(t, r, "deploy", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if r.Status != resource.StatusSuccess || r.FinishedAt == nil {
		t.Fatalf("run = %s, want success", r.Status)
	}
}

func TestAdvanceWhenAndIf(t *testing.T) {
	p := &plan{Jobs: []planJob{
		{Name: "test"},
		{Name: "deploy", Requires: []string{"test"}},
		{Name: "on-fail", Requires: []string{"test"}, When: "failure"},
		{Name: "report", Requires: []string{"test"}, When: "always"},
		{Name: "prod", Requires: []string{"report"}, If: `params.environment == "prod"`},
		{Name: "after-prod", Requires: []string{"prod"}},
	}}
	r := newRun(p)
	now := time.Now()
	advance(r, p, exprEval{}, now)
	finish(t, r, "test", resource.StatusFailure)
	q := advance(r, p, exprEval{}, now)
	got := statuses(r)
	if got["deploy"] != resource.StatusSkipped || got["on-fail"] != resource.StatusQueued || got["report"] != resource.StatusQueued {
		t.Fatalf("after a failed test: %v (queued %v)", got, q)
	}
	if r.Job("deploy").Reason != "a required job did not succeed (test failure)" {
		t.Errorf("skip reason = %q", r.Job("deploy").Reason)
	}
	finish(t, r, "on-fail", resource.StatusSuccess)
	finish(t, r, "report", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	got = statuses(r)
	// prod's if is false: skipped; after-prod requires a skipped job, which counts as success.
	if got["prod"] != resource.StatusSkipped || got["after-prod"] != resource.StatusQueued {
		t.Fatalf("if: %v", got)
	}
	if r.Job("prod").Reason != `if: params.environment == "prod" is false` {
		t.Errorf("if reason = %q", r.Job("prod").Reason)
	}
	finish(t, r, "after-prod", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if r.Status != resource.StatusFailure || r.Reason != "failed jobs: test" {
		t.Fatalf("run = %s (%s), want failure naming the failed job", r.Status, r.Reason)
	}
}

func TestAdvanceBadIfFailsTheJobWithTheExpression(t *testing.T) {
	p := &plan{Jobs: []planJob{{Name: "a", If: "params.nope.deeper == 1"}}}
	r := newRun(p)
	advance(r, p, exprEval{}, time.Now())
	j := r.Job("a")
	if j.Status != resource.StatusFailure || j.Reason == "" {
		t.Fatalf("job = %s (%q), want failure with the expression's error", j.Status, j.Reason)
	}
	if r.Status != resource.StatusFailure {
		t.Fatalf("run = %s, want failure", r.Status)
	}
}

// A failed build skips test because of its requirements; that skip counts
// as a failure below it, so deploy (when: success) does not run and the
// `when: failure` job at the end of the chain does.
func TestAdvanceSkipByRequirementsPropagatesAsFailure(t *testing.T) {
	p := &plan{Jobs: []planJob{
		{Name: "build"},
		{Name: "test", Requires: []string{"build"}},
		{Name: "deploy", Requires: []string{"test"}},
		{Name: "cleanup", Requires: []string{"deploy"}, When: "failure"},
		{Name: "notify", Requires: []string{"deploy"}, When: "always"},
	}}
	r := newRun(p)
	now := time.Now()
	advance(r, p, exprEval{}, now)
	finish(t, r, "build", resource.StatusFailure)
	advance(r, p, exprEval{}, now)
	got := statuses(r)
	if got["test"] != resource.StatusSkipped || got["deploy"] != resource.StatusSkipped {
		t.Fatalf("after a failed build: %v, want test and deploy skipped", got)
	}
	if got["cleanup"] != resource.StatusQueued || got["notify"] != resource.StatusQueued {
		t.Fatalf("after a failed build: %v, want cleanup (when: failure) and notify (always) queued", got)
	}
	for _, name := range []string{"test", "deploy"} {
		if j := r.Job(name); j.Skip != resource.SkipByRequirements {
			t.Errorf("%s skip = %q, want %q", name, j.Skip, resource.SkipByRequirements)
		}
	}
	if want := "a required job did not succeed (test skipped because of its requirements)"; r.Job("deploy").Reason != want {
		t.Errorf("deploy reason = %q, want %q", r.Job("deploy").Reason, want)
	}
	finish(t, r, "cleanup", resource.StatusSuccess)
	finish(t, r, "notify", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if r.Status != resource.StatusFailure || r.Reason != "failed jobs: build" {
		t.Fatalf("run = %s (%s), want failure naming build only", r.Status, r.Reason)
	}
}

// A job skipped by its own `if` counts as satisfied: the jobs below run.
func TestAdvanceSkipByIfIsSatisfied(t *testing.T) {
	p := &plan{Jobs: []planJob{
		{Name: "prod", If: "false"},
		{Name: "after", Requires: []string{"prod"}},
		{Name: "on-fail", Requires: []string{"prod"}, When: "failure"},
	}}
	r := newRun(p)
	now := time.Now()
	advance(r, p, exprEval{}, now)
	if j := r.Job("prod"); j.Status != resource.StatusSkipped || j.Skip != resource.SkipByIf {
		t.Fatalf("prod = %s/%q, want skipped by if", j.Status, j.Skip)
	}
	if got := statuses(r); got["after"] != resource.StatusQueued || got["on-fail"] != resource.StatusSkipped {
		t.Fatalf("%v: want after queued and on-fail skipped", got)
	}
	finish(t, r, "after", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run = %s (%s), want success", r.Status, r.Reason)
	}
}

// The actions of a skipped job are skipped too, not left pending.
func TestSkippedJobSkipsItsActions(t *testing.T) {
	p := &plan{Jobs: []planJob{{Name: "a", If: "false"}}}
	r := newRun(p)
	r.Job("a").Actions = []resource.ActionStatus{{Name: "x", Status: resource.StatusPending}}
	advance(r, p, exprEval{}, time.Now())
	if a := r.Job("a").Actions[0]; a.Status != resource.StatusSkipped {
		t.Fatalf("action of a skipped job = %s, want skipped", a.Status)
	}
}

// A `when: failure` job skipped because nothing failed is no failure for
// the jobs below it: a success path under it runs, a failure path does not.
func TestAdvanceWhenFailureWithNothingFailedIsNoFailure(t *testing.T) {
	p := &plan{Jobs: []planJob{
		{Name: "build"},
		{Name: "notify", Requires: []string{"build"}, When: "failure"},
		{Name: "final-failure", Requires: []string{"notify"}, When: "failure"},
		{Name: "final-success", Requires: []string{"notify"}},
	}}
	r := newRun(p)
	now := time.Now()
	advance(r, p, exprEval{}, now)
	finish(t, r, "build", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if j := r.Job("notify"); j.Status != resource.StatusSkipped || j.Skip != resource.SkipByWhen {
		t.Fatalf("notify = %s/%q, want skipped by when", j.Status, j.Skip)
	}
	got := statuses(r)
	if got["final-failure"] != resource.StatusSkipped || got["final-success"] != resource.StatusQueued {
		t.Fatalf("%v: want final-failure skipped and final-success queued", got)
	}
	finish(t, r, "final-success", resource.StatusSuccess)
	advance(r, p, exprEval{}, now)
	if r.Status != resource.StatusSuccess || r.Reason != "no job failed" {
		t.Fatalf("run = %s (%s), want success", r.Status, r.Reason)
	}
}
