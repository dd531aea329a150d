package orchestrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

func fanPlan(n int) *plan {
	p := &plan{Jobs: []planJob{{Name: "first"}}}
	var mid []string
	for i := range n {
		name := fmt.Sprintf("j%d", i)
		mid = append(mid, name)
		p.Jobs = append(p.Jobs, planJob{Name: name, Requires: []string{"first"}})
	}
	p.Jobs = append(p.Jobs, planJob{Name: "last", Requires: mid})
	return p
}

// memWrite is runState.advance's write without a database.
func memWrite(st *runState) func(int, func(*resource.JobStatus) error) error {
	return func(i int, fn func(*resource.JobStatus) error) error {
		js := copyJob(st.run.Jobs[i])
		if err := fn(&js); err != nil {
			return err
		}
		st.set(i, js, st.rev[i]+1)
		return nil
	}
}

// The state counts the requires each job still waits for: ending a job
// makes ready only the dependents it was the last of.
func TestRunStateFanOutFanIn(t *testing.T) {
	p := fanPlan(100)
	run := &resource.Run{Meta: resource.Meta{Name: "x-1", Namespace: "default"}, Status: resource.StatusRunning}
	st := newRunState(nil, run, p, nil)
	now := time.Now()
	q, err := st.advance(exprEval{}, now, memWrite(st))
	if err != nil || len(q) != 1 || st.run.Jobs[q[0]].Name != "first" {
		t.Fatalf("first queued = %v %v", q, err)
	}
	end := func(i int, to resource.Status) {
		js := copyJob(st.run.Jobs[i])
		setJob(&js, to, "", now)
		st.set(i, js, st.rev[i]+1)
	}
	end(q[0], resource.StatusSuccess)
	q, _ = st.advance(exprEval{}, now, memWrite(st))
	if len(q) != 100 {
		t.Fatalf("after first: %d queued, want 100", len(q))
	}
	for k, i := range q {
		end(i, resource.StatusSuccess)
		more, _ := st.advance(exprEval{}, now, memWrite(st))
		if k < len(q)-1 && len(more) != 0 {
			t.Fatalf("last queued after %d of 100", k+1)
		}
		if k == len(q)-1 && (len(more) != 1 || st.run.Jobs[more[0]].Name != "last") {
			t.Fatalf("after all 100: queued %v", more)
		}
	}
	if st.ended != 101 {
		t.Fatalf("ended = %d, want 101", st.ended)
	}
}

// Rebuilt from the documents (a restart), the state decides what the
// stored jobs make ready: a job whose requires all ended while its own
// decision was not written yet.
func TestRunStateRebuiltFromDocuments(t *testing.T) {
	p := &plan{Jobs: []planJob{{Name: "a"}, {Name: "b", Requires: []string{"a"}}, {Name: "c", Requires: []string{"b"}}}}
	now := time.Now()
	a := resource.JobStatus{Name: "a", Status: resource.StatusSuccess}
	docs := map[string]*resource.Job{"a": {Meta: resource.Meta{Revision: 7}, JobStatus: a}}
	run := &resource.Run{Meta: resource.Meta{Name: "x-1", Namespace: "default"}, Status: resource.StatusRunning, QueuedAt: &now}
	st := newRunState(nil, run, p, docs)
	if st.rev[0] != 7 || st.rev[1] != 0 || st.ended != 1 {
		t.Fatalf("rev %v ended %d", st.rev, st.ended)
	}
	if st.run.Jobs[2].Status != resource.StatusPending || len(st.run.Jobs[2].Transitions) != 1 {
		t.Fatalf("a job without a document = %+v, want pending since the run was queued", st.run.Jobs[2])
	}
	q, _ := st.advance(exprEval{}, now, memWrite(st))
	if len(q) != 1 || st.run.Jobs[q[0]].Name != "b" {
		t.Fatalf("queued after rebuild = %v, want b", q)
	}
}

// A failed require skips its dependents transitively in one advance, and
// a `when: failure` job runs.
func TestRunStateSkipsCascade(t *testing.T) {
	p := &plan{Jobs: []planJob{{Name: "a"}, {Name: "b", Requires: []string{"a"}}, {Name: "c", Requires: []string{"b"}},
		{Name: "cleanup", Requires: []string{"c"}, When: "failure"}}}
	now := time.Now()
	docs := map[string]*resource.Job{"a": {JobStatus: resource.JobStatus{Name: "a", Status: resource.StatusFailure}}}
	run := &resource.Run{Meta: resource.Meta{Name: "x-1"}, Status: resource.StatusRunning}
	st := newRunState(nil, run, p, docs)
	q, _ := st.advance(exprEval{}, now, memWrite(st))
	got := fmt.Sprint(st.run.Jobs[1].Status, st.run.Jobs[2].Status, st.run.Jobs[3].Status)
	if got != "skippedskippedqueued" || len(q) != 1 {
		t.Fatalf("b, c, cleanup = %s (queued %v)", got, q)
	}
	if st.run.Jobs[2].Reason != "a required job did not succeed (b skipped because of its requirements)" {
		t.Errorf("c's reason = %q", st.run.Jobs[2].Reason)
	}
}

// A run that ended shows its jobs not ended as cancelled, with its reason,
// whatever their documents say.
func TestEndedJobsShowCancelled(t *testing.T) {
	now := time.Now()
	run := &resource.Run{Status: resource.StatusCancelled, Reason: "stop", FinishedAt: &now, Jobs: []resource.JobStatus{
		{Name: "a", Status: resource.StatusSuccess},
		{Name: "b", Status: resource.StatusRunning, Execution: "x", Actions: []resource.ActionStatus{{Name: "s", Status: resource.StatusRunning}}},
		{Name: "c", Status: resource.StatusQueued},
	}}
	shared := run.Jobs[1].Actions
	endedJobs(run)
	if run.Jobs[0].Status != resource.StatusSuccess || run.Jobs[1].Status != resource.StatusCancelled || run.Jobs[2].Status != resource.StatusCancelled {
		t.Fatalf("jobs = %s %s %s", run.Jobs[0].Status, run.Jobs[1].Status, run.Jobs[2].Status)
	}
	if run.Jobs[1].Actions[0].Status != resource.StatusCancelled || run.Jobs[1].Reason != "stop" || run.Jobs[1].Execution != "" {
		t.Fatalf("job b = %+v", run.Jobs[1])
	}
	if shared[0].Status != resource.StatusRunning {
		t.Fatalf("endedJobs changed the state's copy of an action")
	}
}

// BenchmarkRunState1000FanOutFanIn is the scheduler's own path for a
// 1,000-job fan-out/fan-in: each job ends and the state decides what it
// made ready. ns/job is its cost per job.
func BenchmarkRunState1000FanOutFanIn(b *testing.B) {
	p := fanPlan(998)
	now := time.Now()
	for b.Loop() {
		run := &resource.Run{Meta: resource.Meta{Name: "x-1"}, Status: resource.StatusRunning}
		st := newRunState(nil, run, p, nil)
		w := memWrite(st)
		for q, _ := st.advance(exprEval{}, now, w); len(q) > 0; {
			var next []int
			for _, i := range q {
				js := copyJob(st.run.Jobs[i])
				setJob(&js, resource.StatusSuccess, "", now)
				st.set(i, js, st.rev[i]+1)
				more, _ := st.advance(exprEval{}, now, w)
				next = append(next, more...)
			}
			q = next
		}
		if st.ended != 1000 {
			b.Fatalf("ended %d", st.ended)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/job")
}
