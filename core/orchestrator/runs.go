package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// StartRun starts a run of a pipeline's current version.
func (o *Orchestrator) StartRun(ctx context.Context, ns, pipeline string, params map[string]string, trigger resource.TriggerInfo) (*resource.Run, error) {
	if ns == "" {
		ns = "default"
	}
	if (trigger.Type == "" || trigger.Type == "manual") && trigger.Record == "" {
		// A manual run is a firing too: it gets its record.
		return o.startManual(ctx, ns, pipeline, params, trigger)
	}
	release, err := o.admit()
	if err != nil {
		return nil, err
	}
	defer release() // the run counts as active by then, or was not created
	var pl *resource.Pipeline
	var p *plan
	var values map[string]any
	pl, err = mutate(ctx, o.store, resource.KindPipeline, ns, pipeline, func(pp *resource.Pipeline) error {
		var err error
		if p, err = o.planOf(pp); err != nil {
			return err
		}
		if values, err = coerceParams(pp.Spec, params); err != nil {
			return err
		}
		pp.LastRun++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline %s/%s: %w", ns, pipeline, err)
	}
	if trigger.Type == "" {
		trigger.Type = "manual"
	}
	now := o.now()
	run := &resource.Run{
		Meta:     resource.Meta{Kind: resource.KindRun, Namespace: ns, Name: pipeline + "-" + strconv.FormatInt(pl.LastRun, 10), Labels: map[string]string{"pipeline": pipeline, "active": "true"}},
		Pipeline: pipeline, PipelineVersion: pl.Version, Number: pl.LastRun, Params: values, Trigger: trigger,
		Status: resource.StatusPending, QueuedAt: &now,
	}
	run.Transitions = []resource.Transition{{Status: resource.StatusPending, At: now}}
	// The run's document is a summary; its jobs get documents of their
	// own as they leave pending.
	st := newRunState(o, run, p, nil)
	doc := st.summary(run)
	if err := o.store.create(ctx, doc); err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	run.Meta, run.Counts = doc.Meta, doc.Counts
	st.runRev = doc.Revision
	o.mu.Lock()
	o.runs[ns+"/"+run.Name] = st
	o.mu.Unlock()
	o.trackActive(run, true)
	o.log.Info("run started", "run", run.Name, "namespace", ns, "trigger", trigger.Type, "jobs", len(run.Jobs))
	return o.schedule(ctx, ns, run.Name)
}

// planOf is the plan of a pipeline's current version, from the cache of
// plans when it is there (runs of that version have read it).
func (o *Orchestrator) planOf(pp *resource.Pipeline) (*plan, error) {
	return o.cachedPlan(pp.Namespace+"/"+versionName(pp.Name, pp.Version), func() (json.RawMessage, error) { return pp.Spec, nil })
}

// startManual records a manual firing and starts its run; the record says
// which run it started, or why none did.
func (o *Orchestrator) startManual(ctx context.Context, ns, pipeline string, params map[string]string, trigger resource.TriggerInfo) (*resource.Run, error) {
	now := o.now()
	rec := &resource.TriggerRecord{
		Meta: resource.Meta{Kind: resource.KindTriggerRecord, Namespace: ns, Name: resource.NewTriggerRecordName(now)},
		Type: "manual", Pipeline: pipeline, FiredAt: now, Params: params,
	}
	trigger.Type, trigger.Record = "manual", rec.Name
	run, err := o.StartRun(ctx, ns, pipeline, params, trigger)
	if err != nil {
		rec.Outcome, rec.Reason = resource.TriggerFailed, "could not start a run: "+err.Error()
	} else {
		rec.Outcome, rec.Runs = resource.TriggerStarted, []string{run.Name}
	}
	rec.Labels = rec.SelectorLabels()
	if rerr := o.store.create(context.WithoutCancel(ctx), rec); rerr != nil {
		o.log.Warn("record a manual run", "pipeline", pipeline, "error", rerr)
	}
	return run, err
}

// schedule advances a run, respecting its pipeline's concurrency limit,
// and queues the jobs that became ready.
func (o *Orchestrator) schedule(ctx context.Context, ns, name string) (*resource.Run, error) {
	var queued []jobItem
	var run *resource.Run
	err := o.withRun(ctx, ns, name, func(st *runState) error {
		if st.run.Status.Terminal() {
			run = st.run
			return nil
		}
		if st.run.Status == resource.StatusPending && st.p.Concurrency > 0 {
			busy, err := o.activeRuns(ctx, ns, st.run.Pipeline, st.run.Name)
			if err != nil {
				return err
			}
			if busy >= st.p.Concurrency {
				why := fmt.Sprintf("waiting for one of the %d runs the pipeline allows at once to end", st.p.Concurrency)
				if st.run.Reason != why {
					if err := st.updateRun(ctx, func(r *resource.Run) error { r.Reason = why; return nil }); err != nil {
						return err
					}
				}
				run = st.snapshot()
				return nil
			}
		}
		var err error
		queued, err = o.advanceRun(ctx, st)
		run = st.snapshot()
		return err
	})
	// Jobs recorded as queued are queued even when a later write failed.
	if qerr := o.enqueue(ctx, queued...); qerr != nil && err == nil {
		err = qerr
	}
	if err != nil {
		return nil, err
	}
	if run.Status.Terminal() {
		o.runEnded(ctx, run)
	}
	return run, nil
}

// advanceRun starts the run if it is pending, decides the jobs that became
// ready, writing each, and ends the run when every job has ended. It
// returns the queue items of the jobs it queued.
func (o *Orchestrator) advanceRun(ctx context.Context, st *runState) ([]jobItem, error) {
	// A batch holds at most database.MaxBatchOps writes: a wider change
	// is written one by one without building a batch first.
	if st.batch == nil && len(st.ready) >= 2 && len(st.ready) < database.MaxBatchOps {
		if items, ok := o.advanceBatched(ctx, st); ok {
			return items, nil
		}
	}
	return o.advanceRunWrites(ctx, st)
}

// advanceRunWrites is advanceRun's work, its writes made through the
// state (one by one, or into its batch).
func (o *Orchestrator) advanceRunWrites(ctx context.Context, st *runState) ([]jobItem, error) {
	now := o.now()
	if st.run.Status == resource.StatusPending || st.run.Status == resource.StatusQueued {
		if err := st.updateRun(ctx, func(r *resource.Run) error {
			if st.p.Concurrency > 0 {
				r.Reason = ""
			}
			startRun(r, now)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	idx, err := st.advance(o.eval(), now, func(i int, fn func(*resource.JobStatus) error) error {
		return st.updateJob(ctx, i, fn)
	})
	items := make([]jobItem, 0, len(idx))
	for _, i := range idx {
		items = append(items, jobItem{Namespace: st.run.Namespace, Run: st.run.Name, Job: st.run.Jobs[i].Name, Attempt: max(st.run.Jobs[i].Attempt, 1), RunsOn: st.p.Jobs[i].RunsOn})
	}
	if err != nil {
		return items, err
	}
	if st.ended == len(st.run.Jobs) && !st.run.Status.Terminal() {
		err = st.updateRun(ctx, func(r *resource.Run) error {
			finishIfDone(r, now)
			return nil
		})
	}
	return items, err
}

// activeRuns counts a pipeline's started, unfinished runs other than skip.
func (o *Orchestrator) activeRuns(ctx context.Context, ns, pipeline, skip string) (int, error) {
	n, token := 0, ""
	for {
		runs, next, err := list[resource.Run](ctx, o.store, resource.KindRun, ns, map[string]string{"pipeline": pipeline, "active": "true"}, 200, token)
		if err != nil {
			return 0, err
		}
		for _, r := range runs {
			if r.Name != skip && r.Status != resource.StatusPending && !r.Status.Terminal() {
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		token = next
	}
}

// admit refuses a new run when MaxQueuedRuns runs have not ended yet. A
// run admitted holds a place until release, so that runs started at the
// same moment cannot pass the limit together.
func (o *Orchestrator) admit() (release func(), err error) {
	if o.opts.MaxQueuedRuns <= 0 {
		return func() {}, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := len(o.active) + o.admitting; n >= o.opts.MaxQueuedRuns {
		return nil, sdk.Errorf(sdk.ErrResourceExhausted, "", "the server has %d runs that have not ended, its limit (--max-queued-runs); try again once some have finished", n)
	}
	o.admitting++
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			o.admitting--
			o.mu.Unlock()
		})
	}, nil
}

// trackActive counts a run as not ended, or no longer.
func (o *Orchestrator) trackActive(run *resource.Run, active bool) {
	k := run.Namespace + "/" + run.Name
	o.mu.Lock()
	defer o.mu.Unlock()
	if active {
		o.active[k] = struct{}{}
	} else {
		delete(o.active, k)
	}
}

// runEnded gives a slot to the pipeline's pending runs when it limits how
// many run at once. (The run's "active" label was removed when it ended.)
func (o *Orchestrator) runEnded(ctx context.Context, run *resource.Run) {
	o.trackActive(run, false)
	o.log.Info("run ended", "run", run.Name, "status", run.Status, "reason", run.Reason)
	if p, err := o.planFor(ctx, run); err != nil || p.Concurrency == 0 {
		return
	}
	pending, _, err := list[resource.Run](ctx, o.store, resource.KindRun, run.Namespace, map[string]string{"pipeline": run.Pipeline, "active": "true"}, 200, "")
	if err != nil {
		o.log.Warn("list pending runs", "pipeline", run.Pipeline, "error", err)
		return
	}
	for _, r := range pending {
		if r.Status == resource.StatusPending {
			if _, err := o.schedule(ctx, r.Namespace, r.Name); err != nil {
				o.log.Warn("schedule pending run", "run", r.Name, "error", err)
			}
		}
	}
}

// GetRun returns a run with its jobs.
func (o *Orchestrator) GetRun(ctx context.Context, ns, name string) (*resource.Run, error) {
	o.mu.Lock()
	st := o.runs[ns+"/"+name]
	o.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		if !st.gone && st.run != nil {
			run := st.snapshot()
			st.mu.Unlock()
			return run, nil
		}
		st.mu.Unlock()
	}
	run := &resource.Run{}
	if err := o.store.get(ctx, resource.KindRun, ns, name, run); err != nil {
		return nil, fmt.Errorf("run %s/%s: %w", ns, name, err)
	}
	return o.assemble(ctx, run)
}

// CancelRun cancels a run: its unfinished jobs are cancelled and their
// commands killed.
func (o *Orchestrator) CancelRun(ctx context.Context, ns, name, reason string) (*resource.Run, error) {
	if reason == "" {
		reason = "cancelled"
	}
	return o.endRun(ctx, ns, name, resource.StatusCancelled, reason)
}

// endRun ends a run with a status (cancelled, or failure when it timed
// out): its unfinished jobs are cancelled and their commands killed. It
// writes the run's document only: a job not ended when its run ended is
// cancelled by that (see endedJobs), whatever its own document says, so
// ending a run of any size is one write.
func (o *Orchestrator) endRun(ctx context.Context, ns, name string, status resource.Status, reason string) (*resource.Run, error) {
	var run *resource.Run
	err := o.withRun(ctx, ns, name, func(st *runState) error {
		if st.run.Status.Terminal() {
			return sdk.Errorf(sdk.ErrFailedPrecondition, "run", "run %s already ended (%s)", st.run.Name, st.run.Status)
		}
		now := o.now()
		if err := st.updateRun(ctx, func(r *resource.Run) error {
			r.Reason = reason
			resource.SetStatus(&r.Status, &r.Transitions, status, reason, now)
			r.FinishedAt = &now
			delete(r.Labels, "active")
			return nil
		}); err != nil {
			return err
		}
		run = st.snapshot()
		endedJobs(run)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Its jobs running here stop now; those on other servers when they
	// see the run's change (peers.go).
	o.stopRunJobs(ns, name)
	o.runEnded(ctx, run)
	return run, nil
}

// Decide approves or rejects a job waiting for approval.
func (o *Orchestrator) Decide(ctx context.Context, ns, name, jobName string, approve bool, by, comment string) (*resource.Run, error) {
	var queued []jobItem
	var run *resource.Run
	err := o.withRun(ctx, ns, name, func(st *runState) error {
		if st.run.Status.Terminal() {
			return sdk.Errorf(sdk.ErrFailedPrecondition, "run", "run %s has no job waiting for approval: it ended (%s)", name, st.run.Status)
		}
		var waiting []int
		for i := range st.run.Jobs {
			if st.run.Jobs[i].Status == resource.StatusWaiting && (jobName == "" || st.run.Jobs[i].Name == jobName) {
				waiting = append(waiting, i)
			}
		}
		switch {
		case len(waiting) == 0 && jobName != "":
			return sdk.Errorf(sdk.ErrFailedPrecondition, "job", "job %q of run %s is not waiting for approval", jobName, name)
		case len(waiting) == 0:
			return sdk.Errorf(sdk.ErrFailedPrecondition, "run", "run %s has no job waiting for approval", name)
		case len(waiting) > 1:
			return sdk.Errorf(sdk.ErrInvalidArgument, "job", "run %s has %d jobs waiting for approval; name one with --job", name, len(waiting))
		}
		i := waiting[0]
		now := o.now()
		verb := "approved"
		if !approve {
			verb = "rejected"
		}
		msg := verb + " by " + by
		if comment != "" {
			msg += ": " + comment
		}
		if err := st.updateJob(ctx, i, func(j *resource.JobStatus) error {
			if j.Status != resource.StatusWaiting {
				return sdk.Errorf(sdk.ErrFailedPrecondition, "job", "job %q of run %s is not waiting for approval", j.Name, name)
			}
			if j.Resume > 0 && j.Resume <= len(j.Actions) {
				st := resource.StatusSuccess
				if !approve {
					st = resource.StatusFailure
				}
				setAction(&j.Actions[j.Resume-1], st, msg, now)
			}
			if approve {
				setJob(j, resource.StatusQueued, msg, now)
			} else {
				setJob(j, resource.StatusFailure, msg, now)
			}
			return nil
		}); err != nil {
			return err
		}
		if approve {
			queued = append(queued, jobItem{Namespace: ns, Run: name, Job: st.run.Jobs[i].Name, Attempt: st.run.Jobs[i].Attempt, RunsOn: st.p.Jobs[i].RunsOn})
		}
		stillWaiting := false
		for _, other := range st.run.Jobs {
			if other.Status == resource.StatusWaiting {
				stillWaiting = true
			}
		}
		if !stillWaiting && st.run.Status == resource.StatusWaiting {
			if err := st.updateRun(ctx, func(r *resource.Run) error {
				resource.SetStatus(&r.Status, &r.Transitions, resource.StatusRunning, msg, now)
				return nil
			}); err != nil {
				return err
			}
		}
		more, err := o.advanceRun(ctx, st)
		queued = append(queued, more...)
		run = st.snapshot()
		return err
	})
	if qerr := o.enqueue(ctx, queued...); qerr != nil && err == nil {
		err = qerr
	}
	if err != nil {
		return nil, err
	}
	if run.Status.Terminal() {
		o.runEnded(ctx, run)
	}
	return run, nil
}

// ActionLog returns an action's log: live while it runs, from storage once
// it has ended.
func (o *Orchestrator) ActionLog(ctx context.Context, ns, name, jobName, actionName string) (io.ReadCloser, error) {
	run, err := o.GetRun(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	js := run.Job(jobName)
	if js == nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "job", "run %s has no job %q", name, jobName)
	}
	if js.Action(actionName) == nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "action", "job %s of run %s has no action %q", jobName, name, actionName)
	}
	return o.actionLogReader(ctx, run, jobName, actionName)
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }
