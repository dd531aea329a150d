package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/palvella/palvella/core/resource"
	rstore "github.com/palvella/palvella/core/store"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// A run started by a trigger is created in one database call: the firing's
// record, the pipeline's run counter, the run's summary, the documents of
// the jobs it queues and their queue items, all or none (core/store's
// Batch over database.Batcher). Written one by one, the same start took
// nine calls of the database plugin, each its own transaction, and most of
// a webhook's time (docs/performance.md). The state of the run is built in
// memory exactly as StartRun and schedule build it, with the writes
// collected instead of made; it becomes this process's state once the
// batch is stored.

// maxBatchedJobs bounds the runs created in one call: a larger run may
// queue thousands of jobs at its start, more than a batch takes
// (database.MaxBatchOps); it is started write by write.
const maxBatchedJobs = 200

// batchedStart collects the writes of a run being created.
type batchedStart struct {
	b    *rstore.Batch
	run  *resource.Run         // the last summary given to the batch
	jobs map[int]*resource.Job // the last document given for each job
}

func (bs *batchedStart) updateRun(st *runState, fn func(*resource.Run) error) error {
	r := *st.run
	r.Labels = maps_clone(st.run.Labels)
	r.Transitions = slices.Clip(r.Transitions)
	if err := fn(&r); err != nil {
		return err
	}
	doc := st.summary(&r)
	doc.Revision = st.runRev // 0 for a run this batch creates
	if err := bs.b.Update(doc); err != nil {
		return err
	}
	r.Counts = doc.Counts
	*st.run = r
	bs.run = doc
	return nil
}

func (bs *batchedStart) updateJob(st *runState, i int, fn func(*resource.JobStatus) error) error {
	js := copyJob(st.run.Jobs[i])
	if err := fn(&js); err != nil {
		return err
	}
	// A job without a document (every job of a new run) is created, once,
	// with its last content; one with a document is updated, guarded by
	// the revision it had before the batch.
	rev := st.rev[i]
	doc := st.jobDoc(js, rev)
	var err error
	if rev == 0 {
		err = bs.b.Create(doc)
	} else {
		err = bs.b.Update(doc)
	}
	if err != nil {
		return err
	}
	st.set(i, js, rev)
	bs.jobs[i] = doc
	return nil
}

// stateSave is what a batched advance changes in a run's state, to put
// back when its batch is not stored.
type stateSave struct {
	run    resource.Run
	jobs   []resource.JobStatus
	runRev int64
	rev    []int64
	ended  int
	waits  []int
	ready  []int
}

func (st *runState) save() stateSave {
	return stateSave{run: *st.run, jobs: slices.Clone(st.run.Jobs), runRev: st.runRev, rev: slices.Clone(st.rev),
		ended: st.ended, waits: slices.Clone(st.waits), ready: slices.Clone(st.ready)}
}

func (st *runState) restore(s stateSave) {
	*st.run = s.run
	st.run.Jobs = s.jobs
	st.runRev, st.rev, st.ended, st.waits, st.ready = s.runRev, s.rev, s.ended, s.waits, s.ready
}

// advanceBatched is advanceRun with its writes (the jobs it decides and the
// run's summary) made in one batch of the database: a fan-out of a
// thousand jobs is one call instead of a thousand. It reports false,
// having changed nothing, when the database applies no batches, the
// writes do not fit in one, or the batch is refused (another server wrote
// one of the documents meanwhile): advanceRun then writes one by one.
func (o *Orchestrator) advanceBatched(ctx context.Context, st *runState) ([]jobItem, bool) {
	saved := st.save()
	bs := &batchedStart{b: o.store.Batch(), jobs: map[int]*resource.Job{}}
	st.batch = bs
	items, err := o.advanceRunWrites(ctx, st)
	st.batch = nil
	if err == nil && bs.b.Len() <= database.MaxBatchOps {
		if err = bs.b.Commit(ctx); err == nil {
			for i, doc := range bs.jobs {
				st.rev[i] = doc.Revision
			}
			if bs.run != nil {
				st.runRev = bs.run.Revision
				st.run.Revision, st.run.UpdatedAt = bs.run.Revision, bs.run.UpdatedAt
			}
			return items, true
		}
	}
	st.restore(saved)
	return nil, false
}

// StartRunRecorded starts a run of pipeline pl's current version, as
// StartRun does, and creates rec, the record of the firing that starts it,
// with outcome started and the run's name in its Runs, in the same
// database call: both are stored or neither. pl is the pipeline as the
// caller read it: its run counter is written guarded by its revision, and
// when it has changed since, the pipeline is read again. When rec's name
// is taken (a replayed webhook delivery) it fails with an error matching
// sdk.ErrAlreadyExists whose *rstore.OpError names rec's key, and starts
// nothing. It fails with sdk.ErrUnimplemented, having written nothing,
// when the database plugin applies no batches or the run is too large for
// one: the caller then records and starts the run write by write.
func (o *Orchestrator) StartRunRecorded(ctx context.Context, pl *resource.Pipeline, params map[string]string, trigger resource.TriggerInfo, rec *resource.TriggerRecord) (*resource.Run, error) {
	release, err := o.admit()
	if err != nil {
		return nil, err
	}
	defer release() // the run counts as active by then, or was not created
	ns, pipeline := pl.Namespace, pl.Name
	for attempt := 0; ; attempt++ {
		cp := *pl // startBatched changes it
		run, err := o.startBatched(ctx, &cp, params, trigger, rec)
		var oe *rstore.OpError
		if attempt < 50 && errors.Is(err, sdk.ErrConflict) && errors.As(err, &oe) && oe.Key.Kind == resource.KindPipeline {
			// Another run of the pipeline started meanwhile: read it again.
			fresh := &resource.Pipeline{}
			if err := o.store.get(ctx, resource.KindPipeline, ns, pipeline, fresh); err != nil {
				return nil, fmt.Errorf("pipeline %s/%s: %w", ns, pipeline, err)
			}
			pl = fresh
			continue
		}
		return run, err
	}
}

func (o *Orchestrator) startBatched(ctx context.Context, pl *resource.Pipeline, params map[string]string, trigger resource.TriggerInfo, rec *resource.TriggerRecord) (*resource.Run, error) {
	ns, pipeline := pl.Namespace, pl.Name
	p, err := o.planOf(pl)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s/%s: %w", ns, pipeline, err)
	}
	if len(p.Jobs) > maxBatchedJobs {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "a run of %d jobs is started write by write", len(p.Jobs))
	}
	values, err := coerceParams(pl.Spec, params)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s/%s: %w", ns, pipeline, err)
	}
	pl.LastRun++
	name := pipeline + "-" + strconv.FormatInt(pl.LastRun, 10)

	b := o.store.Batch()
	if rec != nil {
		// First, so that a replayed delivery is reported as such.
		rec.Kind, rec.Outcome, rec.Reason, rec.Runs = resource.KindTriggerRecord, resource.TriggerStarted, "", []string{name}
		rec.Labels = rec.SelectorLabels()
		if err := b.Create(rec); err != nil {
			return nil, err
		}
	}
	if err := b.Update(pl); err != nil {
		return nil, err
	}
	if trigger.Type == "" {
		trigger.Type = "manual"
	}
	now := o.now()
	run := &resource.Run{
		Meta:     resource.Meta{Kind: resource.KindRun, Namespace: ns, Name: name, Labels: map[string]string{"pipeline": pipeline, "active": "true"}},
		Pipeline: pipeline, PipelineVersion: pl.Version, Number: pl.LastRun, Params: values, Trigger: trigger,
		Status: resource.StatusPending, QueuedAt: &now,
	}
	run.Transitions = []resource.Transition{{Status: resource.StatusPending, At: now}}
	st := newRunState(o, run, p, nil)
	doc := st.summary(run)
	if err := b.Create(doc); err != nil {
		return nil, err
	}
	bs := &batchedStart{b: b, run: doc, jobs: map[int]*resource.Job{}}
	st.batch = bs

	// As schedule does for a pending run.
	var queued []jobItem
	busy := 0
	if p.Concurrency > 0 {
		if busy, err = o.activeRuns(ctx, ns, pipeline, name); err != nil {
			return nil, err
		}
	}
	if p.Concurrency > 0 && busy >= p.Concurrency {
		why := fmt.Sprintf("waiting for one of the %d runs the pipeline allows at once to end", p.Concurrency)
		err = st.updateRun(ctx, func(r *resource.Run) error { r.Reason = why; return nil })
	} else {
		queued, err = o.advanceRun(ctx, st)
	}
	if err != nil {
		return nil, err
	}
	for _, it := range queued {
		if err := o.ensureQueue(ctx, it.RunsOn); err != nil {
			return nil, fmt.Errorf("enqueue job %s: record its queue: %w", it.id(), err)
		}
		payload, _ := json.Marshal(it) // plain strings and ints
		b.Enqueue(&database.EnqueueRequest{Queue: queueOf(it.RunsOn), Payload: payload, ID: it.id()})
	}
	if err := b.Commit(ctx); err != nil {
		return nil, err
	}

	// Stored: the state is this process's from now on.
	st.batch = nil
	st.runRev = bs.run.Revision
	st.run.Revision, st.run.CreatedAt, st.run.UpdatedAt = bs.run.Revision, bs.run.CreatedAt, bs.run.UpdatedAt
	for i, jd := range bs.jobs {
		st.rev[i] = jd.Revision
	}
	out := st.snapshot()
	if !out.Status.Terminal() {
		o.mu.Lock()
		o.runs[ns+"/"+name] = st
		o.mu.Unlock()
		o.trackActive(out, true)
	}
	if len(queued) > 0 {
		o.kick()
	}
	o.log.Info("run started", "run", name, "namespace", ns, "trigger", trigger.Type, "jobs", len(out.Jobs), "queued", len(queued))
	if out.Status.Terminal() {
		o.runEnded(ctx, out)
	}
	return out, nil
}
