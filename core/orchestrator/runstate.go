package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palvella/palvella/core/resource"
	rstore "github.com/palvella/palvella/core/store"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// A run is stored as a small summary document (kind Run: status, reason,
// timestamps, counts, params and trigger) and one document per job that
// has left pending (kind Job, see resource.Job). A change of a job writes
// that job's document only.
//
// runState is this process's view of a run that has not ended: the
// summary, every job (a job without a document is pending), and the
// scheduler's counters, so that deciding what a change makes ready costs
// the jobs it touches, not the run's size. The documents are the truth:
// the state is loaded from them on first use (after a restart, or when
// another process ran the run before), written through on every change,
// and dropped when the run ends or a write fails in a way it cannot tell
// the outcome of.
type runState struct {
	o    *Orchestrator
	mu   sync.Mutex
	gone bool // dropped from the cache: load it again

	run    *resource.Run // the summary; Jobs holds every job in plan order
	runRev int64
	p      *plan
	d      *dag
	rev    []int64 // each job's document revision; 0 when it has none

	ended int   // jobs in a terminal status
	waits []int // by job, how many of its requires have not ended
	ready []int // pending jobs whose requires have all ended, to decide

	// batch, while a new run is being created in one database call
	// (startbatch.go), takes the writes instead of the store.
	batch *batchedStart
}

// dag indexes a plan for the scheduler.
type dag struct {
	idx        map[string]int
	requires   [][]int
	dependents [][]int
}

func newDAG(p *plan) *dag {
	d := &dag{idx: make(map[string]int, len(p.Jobs)), requires: make([][]int, len(p.Jobs)), dependents: make([][]int, len(p.Jobs))}
	for i := range p.Jobs {
		d.idx[p.Jobs[i].Name] = i
	}
	for i := range p.Jobs {
		for _, r := range p.Jobs[i].Requires {
			if k, ok := d.idx[r]; ok {
				d.requires[i] = append(d.requires[i], k)
				d.dependents[k] = append(d.dependents[k], i)
			}
		}
	}
	return d
}

// implicitJob is the status of a job that has no document yet.
func implicitJob(pj *planJob, at time.Time) resource.JobStatus {
	js := resource.JobStatus{Name: pj.Name, Status: resource.StatusPending, Transitions: []resource.Transition{{Status: resource.StatusPending, At: at}}}
	if len(pj.Actions) > 0 {
		js.Actions = make([]resource.ActionStatus, len(pj.Actions))
		for i, a := range pj.Actions {
			js.Actions[i] = resource.ActionStatus{Name: a.Name, Type: a.Type, Status: resource.StatusPending, LogKey: storageLogKey(pj.Name, a.Name)}
		}
	}
	return js
}

func runCreated(r *resource.Run) time.Time {
	if r.QueuedAt != nil {
		return *r.QueuedAt
	}
	return r.CreatedAt
}

// newRunState builds the state of a run from its summary, its plan and
// the documents of its jobs (by name).
func newRunState(o *Orchestrator, run *resource.Run, p *plan, docs map[string]*resource.Job) *runState {
	st := &runState{o: o, run: run, runRev: run.Revision, p: p, d: newDAG(p)}
	run.Jobs = make([]resource.JobStatus, len(p.Jobs))
	st.rev = make([]int64, len(p.Jobs))
	at := runCreated(run)
	for i := range p.Jobs {
		if doc := docs[p.Jobs[i].Name]; doc != nil {
			run.Jobs[i], st.rev[i] = doc.JobStatus, doc.Revision
		} else {
			run.Jobs[i] = implicitJob(&p.Jobs[i], at)
		}
		run.Jobs[i].MaxAttempts = p.Jobs[i].Retries + 1 // runs stored before MaxAttempts get it too
		if run.Jobs[i].Status.Terminal() {
			st.ended++
		}
	}
	st.waits = make([]int, len(p.Jobs))
	for i := range run.Jobs {
		st.waits[i] = st.unmet(i)
		if run.Jobs[i].Status == resource.StatusPending && st.waits[i] == 0 {
			st.ready = append(st.ready, i)
		}
	}
	return st
}

// unmet counts the requires of job i that have not ended.
func (st *runState) unmet(i int) int {
	n := 0
	for _, k := range st.d.requires[i] {
		if !st.run.Jobs[k].Status.Terminal() {
			n++
		}
	}
	return n
}

// jobEnded notes that job i reached a terminal status: the dependents it
// was the last unfinished require of become ready.
func (st *runState) jobEnded(i int) {
	st.ended++
	for _, k := range st.d.dependents[i] {
		st.waits[k]--
		if st.run.Jobs[k].Status == resource.StatusPending && st.waits[k] == 0 {
			st.ready = append(st.ready, k)
		}
	}
}

// set replaces job i's status after a write, keeping the counters.
func (st *runState) set(i int, js resource.JobStatus, rev int64) {
	was := st.run.Jobs[i].Status
	st.run.Jobs[i], st.rev[i] = js, rev
	if !was.Terminal() && js.Status.Terminal() {
		st.jobEnded(i)
	}
}

func (st *runState) index(job string) (int, bool) {
	if st.d == nil {
		return -1, false // an ended run's state has no jobs
	}
	i, ok := st.d.idx[job]
	return i, ok
}

// copyJob returns a copy of a job's status that can be changed without
// touching what readers were given.
func copyJob(js resource.JobStatus) resource.JobStatus {
	js.Actions = slices.Clone(js.Actions)
	js.Transitions = slices.Clip(js.Transitions)
	return js
}

// updateJob applies fn to a copy of job i and writes it: a create for a
// job without a document, otherwise an update guarded by its revision.
// When another writer changed the document, it is read again and fn runs
// on the fresh copy. fn's errors are returned as they are.
func (st *runState) updateJob(ctx context.Context, i int, fn func(*resource.JobStatus) error) error {
	return st.updateJobAcking(ctx, i, nil, fn)
}

// jobDoc is the document of a job of the run with status js, at revision
// rev (0: not stored yet).
func (st *runState) jobDoc(js resource.JobStatus, rev int64) *resource.Job {
	return &resource.Job{Meta: resource.Meta{Kind: resource.KindJob, Namespace: st.run.Namespace, Name: resource.JobResourceName(st.run.Name, js.Name),
		Labels: map[string]string{"run": st.run.Name}, Revision: rev}, Run: st.run.Name, Pipeline: st.run.Pipeline, JobStatus: js}
}

// pendingAck is the ack of a job's queue item that its outcome's write
// may carry (updateJobAcking); done says it did.
type pendingAck struct {
	req  database.AckRequest
	done atomic.Bool
}

// updateJobAcking is updateJob whose write also acks ack's queue item, in
// one batch of the database: one call instead of two at the end of every
// job. ack.done tells whether it did. When the database applies no
// batches, or the ack alone fails (the lease is no longer ack's), the
// write is made without it, as updateJob does, and the caller acks as
// before (or finds the lease gone, as before).
func (st *runState) updateJobAcking(ctx context.Context, i int, ack *pendingAck, fn func(*resource.JobStatus) error) error {
	if st.batch != nil {
		return st.batch.updateJob(st, i, fn)
	}
	for attempt := 0; ; attempt++ {
		js := copyJob(st.run.Jobs[i])
		if err := fn(&js); err != nil {
			return err
		}
		doc := st.jobDoc(js, st.rev[i])
		err := st.writeJob(ctx, doc, ack)
		if err == nil {
			st.set(i, js, doc.Revision)
			if ack != nil {
				ack.done.Store(true)
			}
			return nil
		}
		var oe *rstore.OpError
		if ack != nil && (errors.Is(err, sdk.ErrUnimplemented) || errors.As(err, &oe) && oe.Key.Kind == "") {
			ack = nil // no batches, or the ack failed: the write alone
			continue
		}
		if (!errors.Is(err, sdk.ErrConflict) && !errors.Is(err, sdk.ErrAlreadyExists)) || attempt >= 20 {
			return err
		}
		// Another writer got there first: take its version.
		fresh := &resource.Job{}
		if gerr := st.o.store.get(ctx, resource.KindJob, st.run.Namespace, doc.Meta.Name, fresh); gerr != nil {
			return gerr
		}
		st.set(i, fresh.JobStatus, fresh.Revision)
	}
}

// writeJob stores a job's document: a create when it has no revision, an
// update guarded by it otherwise; with ack, in one batch with the ack.
func (st *runState) writeJob(ctx context.Context, doc *resource.Job, ack *pendingAck) error {
	if ack == nil {
		if doc.Revision == 0 {
			return st.o.store.create(ctx, doc)
		}
		return st.o.store.update(ctx, doc)
	}
	b := st.o.store.Batch()
	var err error
	if doc.Revision == 0 {
		err = b.Create(doc)
	} else {
		err = b.Update(doc)
	}
	if err != nil {
		return err
	}
	b.Ack(&ack.req)
	return b.Commit(ctx)
}

// summary is the run's document: the run without its jobs, with counts.
func (st *runState) summary(r *resource.Run) *resource.Run {
	s := *r
	s.Jobs = nil
	s.Labels = maps_clone(r.Labels)
	s.Counts = map[resource.Status]int{}
	for i := range st.run.Jobs {
		s.Counts[st.run.Jobs[i].Status]++
	}
	return &s
}

func maps_clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// updateRun applies fn to a copy of the run's summary and writes it,
// reading it again when another writer changed it.
func (st *runState) updateRun(ctx context.Context, fn func(*resource.Run) error) error {
	if st.batch != nil {
		return st.batch.updateRun(st, fn)
	}
	for attempt := 0; ; attempt++ {
		r := *st.run
		r.Labels = maps_clone(st.run.Labels)
		r.Transitions = slices.Clip(r.Transitions)
		if err := fn(&r); err != nil {
			return err
		}
		doc := st.summary(&r)
		doc.Revision = st.runRev
		err := st.o.store.update(ctx, doc)
		if err == nil {
			r.Revision, r.UpdatedAt, r.Counts = doc.Revision, doc.UpdatedAt, doc.Counts
			*st.run = r
			st.runRev = doc.Revision
			return nil
		}
		if !errors.Is(err, sdk.ErrConflict) || attempt >= 20 {
			return err
		}
		fresh := &resource.Run{}
		if gerr := st.o.store.get(ctx, resource.KindRun, st.run.Namespace, st.run.Name, fresh); gerr != nil {
			return gerr
		}
		fresh.Jobs = st.run.Jobs
		*st.run = *fresh
		st.runRev = fresh.Revision
	}
}

// snapshot returns the run with its jobs, for readers. The jobs' statuses
// are shared with the state, which replaces them rather than change them.
func (st *runState) snapshot() *resource.Run {
	r := *st.run
	r.Jobs = slices.Clone(st.run.Jobs)
	r.Labels = maps_clone(st.run.Labels)
	r.Transitions = slices.Clip(r.Transitions)
	return &r
}

// withRun runs fn with the state of a run that has not ended, loading it
// if this process has none, and serialising the changes of the run made
// here. For a run that has ended fn gets a state without jobs (st.run's
// status says so); it is not kept. A failed write drops the state: the
// next use loads it again from the documents.
func (o *Orchestrator) withRun(ctx context.Context, ns, name string, fn func(*runState) error) error {
	key := ns + "/" + name
	for {
		o.mu.Lock()
		st := o.runs[key]
		if st == nil {
			st = &runState{o: o}
			o.runs[key] = st
		}
		o.mu.Unlock()
		st.mu.Lock()
		if st.gone {
			st.mu.Unlock()
			continue
		}
		if st.run == nil {
			loaded, err := o.loadRunState(ctx, ns, name)
			if err != nil || loaded.run.Status.Terminal() {
				st.gone = true
				o.dropState(key, st)
				st.mu.Unlock()
				if err != nil {
					return err
				}
				return fn(loaded)
			}
			st.run, st.runRev, st.p, st.d, st.rev, st.ended, st.waits, st.ready = loaded.run, loaded.runRev, loaded.p, loaded.d, loaded.rev, loaded.ended, loaded.waits, loaded.ready
		}
		err := fn(st)
		if st.run.Status.Terminal() || (err != nil && !isDecision(err)) {
			// Ended, or a write failed and what is stored is not known:
			// the documents tell next time.
			st.gone = true
			o.dropState(key, st)
		}
		st.mu.Unlock()
		return err
	}
}

// isDecision reports whether err is an answer rather than a failure to
// write (after which the state may differ from the documents).
func isDecision(err error) bool {
	return errors.Is(err, errStale) || errors.Is(err, errFenced) || errors.Is(err, sdk.ErrFailedPrecondition) ||
		errors.Is(err, sdk.ErrInvalidArgument) || errors.Is(err, errTooLarge)
}

func (o *Orchestrator) dropState(key string, st *runState) {
	o.mu.Lock()
	if o.runs[key] == st {
		delete(o.runs, key)
	}
	o.mu.Unlock()
}

// forgetRun drops the state of a deleted run.
func (o *Orchestrator) forgetRun(ns, name string) {
	o.mu.Lock()
	st := o.runs[ns+"/"+name]
	delete(o.runs, ns+"/"+name)
	o.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.gone = true
		st.mu.Unlock()
	}
}

// loadRunState reads a run's summary and, unless it has ended, its jobs.
func (o *Orchestrator) loadRunState(ctx context.Context, ns, name string) (*runState, error) {
	run := &resource.Run{}
	if err := o.store.get(ctx, resource.KindRun, ns, name, run); err != nil {
		return nil, fmt.Errorf("run %s/%s: %w", ns, name, err)
	}
	if run.Status.Terminal() {
		return &runState{o: o, run: run, runRev: run.Revision}, nil
	}
	p, err := o.planFor(ctx, run)
	if err != nil {
		return nil, err
	}
	docs, err := o.jobDocs(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return newRunState(o, run, p, docs), nil
}

// jobDocs reads the job documents of a run, by job name.
func (o *Orchestrator) jobDocs(ctx context.Context, ns, run string) (map[string]*resource.Job, error) {
	docs := map[string]*resource.Job{}
	token := ""
	for {
		page, next, err := list[resource.Job](ctx, o.store, resource.KindJob, ns, map[string]string{"run": run}, 1000, token)
		if err != nil {
			return nil, fmt.Errorf("read the jobs of run %s/%s: %w", ns, run, err)
		}
		for i := range page {
			if page[i].Run == run {
				docs[page[i].JobStatus.Name] = &page[i]
			}
		}
		if next == "" {
			return docs, nil
		}
		token = next
	}
}

// assemble returns a run with its jobs from its summary and documents, for
// a run this process holds no state of. A job not ended when its run
// ended is shown cancelled, with the run's reason.
func (o *Orchestrator) assemble(ctx context.Context, run *resource.Run) (*resource.Run, error) {
	docs, err := o.jobDocs(ctx, run.Namespace, run.Name)
	if err != nil {
		return nil, err
	}
	p, perr := o.planFor(ctx, run)
	if perr != nil {
		// The version is gone: show what is stored.
		p = &plan{}
		for name := range docs {
			p.Jobs = append(p.Jobs, planJob{Name: name})
		}
		slices.SortFunc(p.Jobs, func(a, b planJob) int {
			return cmpTime(docs[a.Name].CreatedAt, docs[b.Name].CreatedAt)
		})
	}
	st := newRunState(o, run, p, docs)
	out := st.run
	if out.Status.Terminal() {
		endedJobs(out)
	}
	return out, nil
}

func cmpTime(a, b time.Time) int { return a.Compare(b) }

// endedJobs shows the jobs that had not ended when their run ended as
// cancelled, with the run's reason, and their unfinished actions too.
func endedJobs(run *resource.Run) {
	at := run.UpdatedAt
	if run.FinishedAt != nil {
		at = *run.FinishedAt
	}
	reason := run.Reason
	if reason == "" {
		reason = "the run ended"
	}
	for i := range run.Jobs {
		j := &run.Jobs[i]
		if j.Status.Terminal() {
			continue
		}
		*j = copyJob(*j)
		j.Execution = ""
		setJob(j, resource.StatusCancelled, reason, at)
		for k := range j.Actions {
			if as := &j.Actions[k]; !as.Status.Terminal() {
				setAction(as, resource.StatusCancelled, reason, at)
			}
		}
	}
}

// summaryCopy returns the run's summary without its jobs.
func (st *runState) summaryCopy() *resource.Run {
	r := *st.run
	r.Jobs = nil
	r.Labels = maps_clone(st.run.Labels)
	r.Transitions = slices.Clip(r.Transitions)
	return &r
}

// updateJob changes one job of a run through the run's state.
func (o *Orchestrator) updateJob(ctx context.Context, ns, run, job string, fn func(*resource.JobStatus) error) error {
	return o.withRun(ctx, ns, run, func(st *runState) error {
		i, ok := st.index(job)
		if st.run.Status.Terminal() || !ok {
			return errStale
		}
		return st.updateJob(ctx, i, fn)
	})
}

// exprContextOf is what expressions of a job see now: the run's jobs from
// its state, without reading the run again.
func (o *Orchestrator) exprContextOf(ctx context.Context, run *resource.Run, p *plan, job string, refs *jobRefs) map[string]any {
	if o.remote != nil {
		return o.remote.exprContext(ctx, run, job, refs)
	}
	var out map[string]any
	_ = o.withRun(ctx, run.Namespace, run.Name, func(st *runState) error {
		if st.run.Jobs != nil {
			out = exprContext(st.run, st.p, job, refs)
		}
		return nil
	})
	if out == nil {
		out = exprContext(run, p, job, refs)
	}
	return out
}
