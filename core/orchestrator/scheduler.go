package orchestrator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/resource"
)

// evaluator evaluates the expressions of pipelines (core/expr).
type evaluator interface {
	EvalBool(expr string, env map[string]any) (bool, error)
	Interpolate(s string, env map[string]any) (string, error)
}

// advance moves a run forward as far as its DAG allows without running
// anything: it starts a pending run, decides each pending job whose
// required jobs have all ended (queue it, or skip it by `when` or `if`),
// and ends the run when every job has ended. It returns the jobs it queued.
// It is a pure function of the run (the scheduler's own path is
// runState.advance, which keeps its counters between changes; this one
// builds them from the run).
func advance(run *resource.Run, p *plan, ev evaluator, now time.Time) []string {
	if run.Status.Terminal() {
		return nil
	}
	startRun(run, now)
	docs := map[string]*resource.Job{}
	for i := range run.Jobs {
		docs[run.Jobs[i].Name] = &resource.Job{JobStatus: run.Jobs[i]}
	}
	jobs := run.Jobs
	st := newRunState(nil, run, p, docs)
	queued, _ := st.advance(ev, now, func(i int, fn func(*resource.JobStatus) error) error {
		js := copyJob(st.run.Jobs[i])
		if err := fn(&js); err != nil {
			return err
		}
		st.set(i, js, st.rev[i])
		return nil
	})
	// Jobs the plan does not have fail; they never run.
	for _, j := range jobs {
		if _, ok := st.d.idx[j.Name]; !ok {
			if j.Status == resource.StatusPending {
				setJob(&j, resource.StatusFailure, "the job is not in the pipeline version this run started with", now)
			}
			run.Jobs = append(run.Jobs, j)
		}
	}
	if st.ended == len(p.Jobs) {
		finishIfDone(run, now)
	}
	names := make([]string, len(queued))
	for k, i := range queued {
		names[k] = run.Jobs[i].Name
	}
	return names
}

// startRun marks a pending or queued run running.
func startRun(run *resource.Run, now time.Time) {
	if run.Status == resource.StatusPending || run.Status == resource.StatusQueued {
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusRunning, "", now)
		run.StartedAt = &now
	}
}

// advance decides the jobs that became ready, writing each decision with
// write, and returns the jobs it queued. Deciding a job costs its
// requires, and a job that ends makes ready only its own dependents, so a
// run of N jobs is scheduled in O(N + edges), whatever its shape.
func (st *runState) advance(ev evaluator, now time.Time, write func(i int, fn func(*resource.JobStatus) error) error) ([]int, error) {
	var queued []int
	for len(st.ready) > 0 {
		i := st.ready[0]
		st.ready = st.ready[1:]
		if st.run.Jobs[i].Status != resource.StatusPending {
			continue
		}
		pj := &st.p.Jobs[i]
		anyFailed, allOK := false, true
		for _, k := range st.d.requires[i] {
			rj := &st.run.Jobs[k]
			switch {
			case rj.FailedForDependents():
				anyFailed, allOK = true, false
			case rj.Satisfied():
			default:
				allOK = false
			}
		}
		to, reason, skip := resource.StatusQueued, "", resource.SkipCause("")
		switch when := pj.When; {
		case when == "always":
		case when == "failure" && !anyFailed:
			to, reason, skip = resource.StatusSkipped, "when: failure, and no required job failed", resource.SkipByWhen
		case when != "failure" && !allOK:
			to, reason, skip = resource.StatusSkipped, "a required job did not succeed ("+failedRequires(st, i)+")", resource.SkipByRequirements
		}
		if to == resource.StatusQueued && pj.If != "" {
			ok, err := ev.EvalBool(pj.If, exprContext(st.run, st.p, pj.Name, refsOf(pj.If)))
			switch {
			case err != nil:
				to, reason = resource.StatusFailure, fmt.Sprintf("if: %v", err)
			case !ok:
				to, reason, skip = resource.StatusSkipped, "if: "+pj.If+" is false", resource.SkipByIf
			}
		}
		err := write(i, func(js *resource.JobStatus) error {
			if js.Status != resource.StatusPending {
				return errStale
			}
			setJob(js, to, reason, now)
			js.Skip = skip
			if to == resource.StatusQueued {
				js.QueuedAt = &now
			}
			return nil
		})
		switch {
		case errors.Is(err, errStale):
			continue
		case err != nil:
			return queued, err
		}
		if to == resource.StatusQueued {
			queued = append(queued, i)
		}
	}
	return queued, nil
}

func failedRequires(st *runState, i int) string {
	var s []string
	for _, k := range st.d.requires[i] {
		rj := &st.run.Jobs[k]
		switch {
		case rj.Satisfied():
		case rj.Status == resource.StatusSkipped:
			s = append(s, rj.Name+" skipped because of its requirements")
		default:
			s = append(s, rj.Name+" "+string(rj.Status))
		}
	}
	return strings.Join(s, ", ")
}

// finishIfDone ends the run when every job has ended.
func finishIfDone(run *resource.Run, now time.Time) {
	if run.Status.Terminal() {
		return
	}
	failed, cancelled := []string{}, false
	for _, j := range run.Jobs {
		if !j.Status.Terminal() {
			return
		}
		switch j.Status {
		case resource.StatusFailure:
			failed = append(failed, j.Name)
		case resource.StatusCancelled:
			cancelled = true
		}
	}
	switch {
	case len(failed) > 0:
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusFailure, "failed jobs: "+strings.Join(failed, ", "), now)
		run.Reason = "failed jobs: " + strings.Join(failed, ", ")
	case cancelled:
		if run.Reason == "" {
			run.Reason = "cancelled"
		}
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusCancelled, run.Reason, now)
	default:
		run.Reason = "no job failed"
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusSuccess, run.Reason, now)
	}
	run.FinishedAt = &now
	delete(run.Labels, "active")
}

func setJob(js *resource.JobStatus, to resource.Status, reason string, now time.Time) {
	resource.SetStatus(&js.Status, &js.Transitions, to, reason, now)
	js.Reason = reason
	if to == resource.StatusSkipped {
		// Actions of a job that never ran are skipped with it.
		for k := range js.Actions {
			if as := &js.Actions[k]; as.Status == resource.StatusPending {
				setAction(as, resource.StatusSkipped, "the job was skipped", now)
			}
		}
	}
	switch {
	case to == resource.StatusRunning && js.StartedAt == nil:
		js.StartedAt = &now
	case to.Terminal():
		js.FinishedAt = &now
	}
}

func setAction(as *resource.ActionStatus, to resource.Status, msg string, now time.Time) {
	as.Status, as.Message = to, msg
	switch {
	case to == resource.StatusRunning:
		as.StartedAt = &now
	case to.Terminal():
		as.FinishedAt = &now
	}
}

// exprContext is what expressions see (core/expr's Context): params, every
// job of the run, trigger and run, and for a job's own expressions job and
// its actions.
//
// With refs, jobs holds only the jobs refs names (see jobRefs); nil holds
// every job.
func exprContext(run *resource.Run, p *plan, jobName string, refs *jobRefs) map[string]any {
	c := expr.Context{
		Params:  run.Params,
		Jobs:    map[string]expr.Result{},
		Actions: map[string]expr.Result{},
		Trigger: expr.Trigger{Type: run.Trigger.Type, Name: run.Trigger.Name, Headers: run.Trigger.Headers},
		Run:     expr.Run{ID: run.Name, Pipeline: run.Pipeline, Namespace: run.Namespace},
	}
	if payload, ok := run.Trigger.Payload.(map[string]any); ok {
		c.Trigger.Payload = payload
	}
	if refs != nil && !refs.all {
		for name := range refs.names {
			if j := run.Job(name); j != nil {
				c.Jobs[j.Name] = expr.Result{Status: string(j.Status), Outputs: j.Outputs}
			}
		}
	} else {
		for _, j := range run.Jobs {
			c.Jobs[j.Name] = expr.Result{Status: string(j.Status), Outputs: j.Outputs}
		}
	}
	if pj := p.job(jobName); pj != nil {
		c.Job.Params = pj.Params
	}
	if js := run.Job(jobName); js != nil {
		for _, a := range js.Actions {
			c.Actions[a.Name] = expr.Result{Status: string(a.Status), Outputs: a.Outputs}
		}
	}
	return c.Map()
}
