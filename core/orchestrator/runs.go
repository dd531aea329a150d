package orchestrator

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
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
	if err := o.admit(); err != nil {
		return nil, err
	}
	var pl *resource.Pipeline
	var p *plan
	var values map[string]any
	pl, err := mutate(ctx, o.store, resource.KindPipeline, ns, pipeline, func(pp *resource.Pipeline) error {
		var err error
		if p, err = planFromSpec(pp.Spec); err != nil {
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
	for _, j := range p.Jobs {
		js := resource.JobStatus{Name: j.Name, Status: resource.StatusPending, Transitions: []resource.Transition{{Status: resource.StatusPending, At: now}}}
		for _, a := range j.Actions {
			js.Actions = append(js.Actions, resource.ActionStatus{Name: a.Name, Type: a.Type, Status: resource.StatusPending, LogKey: storageLogKey(j.Name, a.Name)})
		}
		run.Jobs = append(run.Jobs, js)
	}
	if err := o.store.create(ctx, run); err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	o.trackActive(run, true)
	o.log.Info("run started", "run", run.Name, "namespace", ns, "trigger", trigger.Type)
	return o.schedule(ctx, ns, run.Name)
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
	run, err := mutate(ctx, o.store, resource.KindRun, ns, name, func(r *resource.Run) error {
		queued = nil
		p, err := o.planFor(ctx, r)
		if err != nil {
			return err
		}
		if r.Status == resource.StatusPending && p.Concurrency > 0 {
			busy, err := o.activeRuns(ctx, ns, r.Pipeline, r.Name)
			if err != nil {
				return err
			}
			if busy >= p.Concurrency {
				r.Reason = fmt.Sprintf("waiting for one of the %d runs the pipeline allows at once to end", p.Concurrency)
				return nil
			}
			r.Reason = ""
		}
		for _, q := range advance(r, p, o.eval(), o.now()) {
			queued = append(queued, jobItem{Namespace: ns, Run: r.Name, Job: q, Attempt: max(r.Job(q).Attempt, 1)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := o.enqueue(ctx, queued...); err != nil {
		return nil, err
	}
	if run.Status.Terminal() {
		o.runEnded(ctx, run)
	}
	return run, nil
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

// admit refuses a new run when MaxQueuedRuns runs have not ended yet.
func (o *Orchestrator) admit() error {
	if o.opts.MaxQueuedRuns <= 0 {
		return nil
	}
	o.mu.Lock()
	n := len(o.active)
	o.mu.Unlock()
	if n >= o.opts.MaxQueuedRuns {
		return sdk.Errorf(sdk.ErrResourceExhausted, "", "the server has %d runs that have not ended, its limit (--max-queued-runs); try again once some have finished", n)
	}
	return nil
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

// GetRun returns a run.
func (o *Orchestrator) GetRun(ctx context.Context, ns, name string) (*resource.Run, error) {
	run := &resource.Run{}
	if err := o.store.get(ctx, resource.KindRun, ns, name, run); err != nil {
		return nil, fmt.Errorf("run %s/%s: %w", ns, name, err)
	}
	return run, nil
}

// ListRuns lists runs, of one pipeline when pipeline is not empty.
func (o *Orchestrator) ListRuns(ctx context.Context, ns, pipeline string, page api.PageRequest) (*api.Page[resource.Run], error) {
	var sel map[string]string
	if pipeline != "" {
		sel = map[string]string{"pipeline": pipeline}
	}
	items, next, err := list[resource.Run](ctx, o.store, resource.KindRun, ns, sel, page.Size, page.Token)
	if err != nil {
		return nil, err
	}
	return &api.Page[resource.Run]{Items: items, NextPageToken: next}, nil
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
// out): its unfinished jobs are cancelled and their commands killed.
func (o *Orchestrator) endRun(ctx context.Context, ns, name string, status resource.Status, reason string) (*resource.Run, error) {
	run, err := mutate(ctx, o.store, resource.KindRun, ns, name, func(r *resource.Run) error {
		if r.Status.Terminal() {
			return sdk.Errorf(sdk.ErrFailedPrecondition, "run", "run %s already ended (%s)", r.Name, r.Status)
		}
		now := o.now()
		for i := range r.Jobs {
			if !r.Jobs[i].Status.Terminal() {
				setJob(&r.Jobs[i], resource.StatusCancelled, reason, now)
				for k := range r.Jobs[i].Actions {
					if as := &r.Jobs[i].Actions[k]; !as.Status.Terminal() {
						setAction(as, resource.StatusCancelled, reason, now)
					}
				}
			}
		}
		r.Reason = reason
		resource.SetStatus(&r.Status, &r.Transitions, status, reason, now)
		r.FinishedAt = &now
		delete(r.Labels, "active")
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	for _, j := range run.Jobs {
		if cancel := o.running[ns+"/"+name+"/"+j.Name]; cancel != nil {
			cancel(errRunCancelled)
		}
	}
	o.mu.Unlock()
	o.runEnded(ctx, run)
	return run, nil
}

// Decide approves or rejects a job waiting for approval.
func (o *Orchestrator) Decide(ctx context.Context, ns, name, jobName string, approve bool, by, comment string) (*resource.Run, error) {
	var queued []jobItem
	run, err := mutate(ctx, o.store, resource.KindRun, ns, name, func(r *resource.Run) error {
		queued = nil
		var waiting []*resource.JobStatus
		for i := range r.Jobs {
			if r.Jobs[i].Status == resource.StatusWaiting && (jobName == "" || r.Jobs[i].Name == jobName) {
				waiting = append(waiting, &r.Jobs[i])
			}
		}
		switch {
		case len(waiting) == 0 && jobName != "":
			return sdk.Errorf(sdk.ErrFailedPrecondition, "job", "job %q of run %s is not waiting for approval", jobName, r.Name)
		case len(waiting) == 0:
			return sdk.Errorf(sdk.ErrFailedPrecondition, "run", "run %s has no job waiting for approval", r.Name)
		case len(waiting) > 1:
			return sdk.Errorf(sdk.ErrInvalidArgument, "job", "run %s has %d jobs waiting for approval; name one with --job", r.Name, len(waiting))
		}
		j := waiting[0]
		now := o.now()
		verb := "approved"
		if !approve {
			verb = "rejected"
		}
		msg := verb + " by " + by
		if comment != "" {
			msg += ": " + comment
		}
		if j.Resume > 0 && j.Resume <= len(j.Actions) {
			st := resource.StatusSuccess
			if !approve {
				st = resource.StatusFailure
			}
			setAction(&j.Actions[j.Resume-1], st, msg, now)
		}
		p, err := o.planFor(ctx, r)
		if err != nil {
			return err
		}
		if approve {
			setJob(j, resource.StatusQueued, msg, now)
			queued = append(queued, jobItem{Namespace: ns, Run: r.Name, Job: j.Name, Attempt: j.Attempt})
		} else {
			setJob(j, resource.StatusFailure, msg, now)
		}
		stillWaiting := false
		for _, other := range r.Jobs {
			if other.Status == resource.StatusWaiting {
				stillWaiting = true
			}
		}
		if !stillWaiting && r.Status == resource.StatusWaiting {
			resource.SetStatus(&r.Status, &r.Transitions, resource.StatusRunning, msg, now)
		}
		for _, q := range advance(r, p, o.eval(), now) {
			queued = append(queued, jobItem{Namespace: ns, Run: r.Name, Job: q, Attempt: max(r.Job(q).Attempt, 1)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := o.enqueue(ctx, queued...); err != nil {
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
