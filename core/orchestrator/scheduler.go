package orchestrator

import (
	"fmt"
	"github.com/palvella/palvella/core/expr"
	"strings"
	"time"

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
// It is a pure function of the run, so it is safe to call again on a fresh
// copy when an update conflicts.
func advance(run *resource.Run, p *plan, ev evaluator, now time.Time) []string {
	if run.Status.Terminal() {
		return nil
	}
	if run.Status == resource.StatusPending || run.Status == resource.StatusQueued {
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusRunning, "", now)
		run.StartedAt = &now
	}
	var queued []string
	for changed := true; changed; {
		changed = false
		for i := range run.Jobs {
			js := &run.Jobs[i]
			if js.Status != resource.StatusPending {
				continue
			}
			pj := p.job(js.Name)
			if pj == nil {
				setJob(js, resource.StatusFailure, "the job is not in the pipeline version this run started with", now)
				changed = true
				continue
			}
			ready, anyFailed, allOK := true, false, true
			for _, req := range pj.Requires {
				rj := run.Job(req)
				if rj == nil || !rj.Status.Terminal() {
					ready = false
					break
				}
				switch {
				case rj.FailedForDependents():
					anyFailed, allOK = true, false
				case rj.Satisfied():
				default:
					allOK = false
				}
			}
			if !ready {
				continue
			}
			changed = true
			switch when := pj.When; {
			case when == "always":
			case when == "failure" && !anyFailed:
				setJob(js, resource.StatusSkipped, "when: failure, and no required job failed", now)
				js.Skip = resource.SkipByRequirements
				continue
			case when != "failure" && !allOK:
				setJob(js, resource.StatusSkipped, "a required job did not succeed ("+failedRequires(run, pj)+")", now)
				js.Skip = resource.SkipByRequirements
				continue
			}
			if pj.If != "" {
				ok, err := ev.EvalBool(pj.If, exprContext(run, p, pj.Name))
				if err != nil {
					setJob(js, resource.StatusFailure, fmt.Sprintf("if: %v", err), now)
					continue
				}
				if !ok {
					setJob(js, resource.StatusSkipped, "if: "+pj.If+" is false", now)
					js.Skip = resource.SkipByIf
					continue
				}
			}
			setJob(js, resource.StatusQueued, "", now)
			js.QueuedAt = &now
			queued = append(queued, js.Name)
		}
	}
	finishIfDone(run, now)
	return queued
}

func failedRequires(run *resource.Run, pj *planJob) string {
	var s []string
	for _, req := range pj.Requires {
		rj := run.Job(req)
		switch {
		case rj == nil || rj.Satisfied():
		case rj.Status == resource.StatusSkipped:
			s = append(s, req+" skipped because of its requirements")
		default:
			s = append(s, req+" "+string(rj.Status))
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
		run.Reason = "every job succeeded or was skipped by its own if"
		resource.SetStatus(&run.Status, &run.Transitions, resource.StatusSuccess, run.Reason, now)
	}
	run.FinishedAt = &now
	delete(run.Labels, "active")
}

func setJob(js *resource.JobStatus, to resource.Status, reason string, now time.Time) {
	resource.SetStatus(&js.Status, &js.Transitions, to, reason, now)
	js.Reason = reason
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
func exprContext(run *resource.Run, p *plan, jobName string) map[string]any {
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
	for _, j := range run.Jobs {
		c.Jobs[j.Name] = expr.Result{Status: string(j.Status), Outputs: j.Outputs}
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
