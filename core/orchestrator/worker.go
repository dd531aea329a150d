package orchestrator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// jobItem is the payload of a queued job.
type jobItem struct {
	Namespace string `json:"namespace"`
	Run       string `json:"run"`
	Job       string `json:"job"`
	Attempt   int    `json:"attempt"`
	// RunsOn is the job's runs_on: it chooses the queue (queueOf).
	RunsOn map[string]string `json:"runs_on,omitempty"`
}

func (it jobItem) id() string {
	return it.Namespace + "/" + it.Run + "/" + it.Job + "/" + strconv.Itoa(it.Attempt)
}

// enqueue puts jobs on the work queue. Item IDs make it idempotent. Many
// items (a wide fan-out) are sent by a few callers at once.
func (o *Orchestrator) enqueue(ctx context.Context, items ...jobItem) error {
	if len(items) == 0 {
		return nil
	}
	db, err := o.database(ctx)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := o.ensureQueue(ctx, it.RunsOn); err != nil {
			return fmt.Errorf("enqueue job %s: record its queue: %w", it.id(), err)
		}
	}
	if len(items) > 1 {
		// A fan-out queues many jobs at once: a batch call of the
		// database each enqueueBatch items instead of one call each.
		err := o.enqueueBatched(ctx, items)
		if !errors.Is(err, sdk.ErrUnimplemented) {
			return err
		}
	}
	put := func(it jobItem) error {
		payload, _ := json.Marshal(it) // plain strings and ints
		if _, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: queueOf(it.RunsOn), Payload: payload, ID: it.id()}); err != nil {
			return fmt.Errorf("enqueue job %s: %w", it.id(), err)
		}
		return nil
	}
	if len(items) < 8 {
		for _, it := range items {
			if err := put(it); err != nil {
				return err
			}
			o.kick()
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Value
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(items) || first.Load() != nil {
					return
				}
				if err := put(items[k]); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				o.kick()
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

// enqueueBatch is how many items one batch call enqueues: enough to
// save most calls, few enough that workers start on the first ones while
// the next are written.
const enqueueBatch = 100

// enqueueBatched enqueues items in batches of the database. It fails with
// sdk.ErrUnimplemented, having enqueued nothing, when the database plugin
// applies no batches. A failed batch is tried again item by item by the
// next call; item IDs make that idempotent.
func (o *Orchestrator) enqueueBatched(ctx context.Context, items []jobItem) error {
	for len(items) > 0 {
		n := min(len(items), enqueueBatch)
		b := o.store.Batch()
		for _, it := range items[:n] {
			payload, _ := json.Marshal(it) // plain strings and ints
			b.Enqueue(&database.EnqueueRequest{Queue: queueOf(it.RunsOn), Payload: payload, ID: it.id()})
		}
		if err := b.Commit(ctx); err != nil {
			if errors.Is(err, sdk.ErrUnimplemented) {
				return err
			}
			return fmt.Errorf("enqueue jobs %s to %s: %w", items[0].id(), items[n-1].id(), err)
		}
		o.kick()
		items = items[n:]
	}
	return nil
}

// workerLoop leases jobs and runs them until ctx ends.
func (o *Orchestrator) workerLoop(ctx context.Context) {
	for ctx.Err() == nil {
		item, err := o.lease(ctx)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Warn("lease a job", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if item == nil {
			select {
			case <-ctx.Done():
			case <-o.wake:
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		// There may be more: let another worker look while this one works.
		o.kick()
		o.work(ctx, item)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (o *Orchestrator) lease(ctx context.Context) (*database.QueueItem, error) {
	return o.leaseAny(ctx, o.holder, o.opts.Labels)
}

// Why a job's context was cancelled, besides the run being cancelled.
var (
	// errLeaseLost: the worker could not renew the job's lease in time, or
	// another worker holds it now. The job is stopped before the lease can
	// expire and nothing more is recorded for it here.
	errLeaseLost = errors.New("the job's lease was lost")
	// errFenced: another execution of the job has taken it over.
	errFenced = errors.New("another execution took the job over")
	// errRunCancelled: the run was cancelled or ended.
	errRunCancelled = errors.New("cancelled")
)

// work runs one leased job, renewing its lease, then acks the item, or
// hands it back to the queue when the job was interrupted.
func (o *Orchestrator) work(ctx context.Context, item *database.QueueItem) {
	bg := context.WithoutCancel(ctx)
	var it jobItem
	if err := json.Unmarshal(item.Payload, &it); err != nil {
		o.log.Error("dropping a malformed queue item", "id", item.ID, "error", err)
		o.ack(bg, item)
		return
	}
	// The job runs in the jobs context, which outlives ctx (the leasing
	// loop's) by the shutdown grace.
	jobCtx, cancel := context.WithCancelCause(o.jobs)
	defer cancel(nil)
	key := it.Namespace + "/" + it.Run + "/" + it.Job
	o.mu.Lock()
	o.running[key] = cancel
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.running, key)
		o.mu.Unlock()
	}()

	// Keep the lease while the job runs. A lease that cannot be renewed
	// for half its TTL stops the job, so that it has ended before the
	// lease expires and another worker may take it.
	ack := &pendingAck{req: database.AckRequest{ID: item.ID, LeaseToken: item.LeaseToken}}
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(o.opts.LeaseTTL / 4)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(bg, o.opts.LeaseTTL/4)
			db, err := o.database(rctx)
			if err == nil {
				_, err = db.Renew(rctx, &database.RenewRequest{ID: item.ID, LeaseToken: item.LeaseToken, TTL: o.opts.LeaseTTL})
			}
			rcancel()
			switch {
			case err == nil:
				lastOK = time.Now()
			case ack.done.Load():
				return // the outcome's write acked the item
			case errors.Is(err, sdk.ErrConflict) || errors.Is(err, sdk.ErrNotFound):
				o.log.Error("job lease taken over; stopping the job", "job", it.id(), "error", err)
				cancel(errLeaseLost)
				return
			case time.Since(lastOK) >= o.opts.LeaseTTL/2:
				o.log.Error("job lease could not be renewed; stopping the job before it expires", "job", it.id(), "error", err)
				cancel(errLeaseLost)
				return
			default:
				o.log.Warn("renew job lease", "job", it.id(), "error", err)
			}
		}
	}()
	d := o.runJob(jobCtx, it, ack)
	cancel(nil)
	<-renewDone
	switch {
	case d == acked:
	case errors.Is(context.Cause(jobCtx), errLeaseLost), d == lost:
		// Nothing more is ours to write: the lease decides who runs it next.
	case d == handBack:
		o.nack(bg, item, o.handBackDelay(jobCtx))
	default:
		o.ack(bg, item)
	}
}

// disposition is what the worker does with a job's queue item.
type disposition int

const (
	done     disposition = iota // ack it
	handBack                    // release it to run again
	lost                        // leave it: another execution holds the job
	acked                       // nothing: the outcome's write acked it
)

// handBackDelay is how long an interrupted job waits before it may be
// leased again: at once after a stop of the server, a moment after a
// crash so that the plugin can restart.
func (o *Orchestrator) handBackDelay(jobCtx context.Context) time.Duration {
	if errors.Is(context.Cause(jobCtx), errShutdown) {
		return 0
	}
	return time.Second
}

func (o *Orchestrator) ack(ctx context.Context, item *database.QueueItem) {
	db, err := o.database(ctx)
	if err == nil {
		err = db.Ack(ctx, &database.AckRequest{ID: item.ID, LeaseToken: item.LeaseToken})
	}
	if err != nil && ctx.Err() == nil {
		o.log.Warn("ack job", "id", item.ID, "error", err)
	}
}

func (o *Orchestrator) nack(ctx context.Context, item *database.QueueItem, after time.Duration) {
	db, err := o.database(ctx)
	if err == nil {
		err = db.Nack(ctx, &database.NackRequest{ID: item.ID, LeaseToken: item.LeaseToken, RetryAfter: after})
	}
	if err != nil && ctx.Err() == nil {
		o.log.Warn("hand a job back to the queue", "id", item.ID, "error", err)
	}
}

// newExecutionID returns a random identifier of one execution of a job.
func newExecutionID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// jobOutcome is how a job's actions ended.
type jobOutcome struct {
	status  resource.Status
	reason  string
	resume  int // for waiting
	outputs map[string]any
	// interrupted, when set, says what stopped the job from the outside
	// (a plugin or engine crash): it is handed back to run again.
	interrupted string
	// noRetry: a plugin the job needs did not start; a retry cannot help.
	noRetry bool
	// lastAction is the end of the job's last action, recorded with the
	// job's own end: one write of the job's document instead of two.
	lastAction *actionEnd
	// unreached names the action recorded running with the job's start
	// (startedJob.premarked) when the job ended before it ran: it is
	// recorded as not reached, as if it had not been marked.
	unreached string
	// ack, when set, is the ack of the job's queue item, made with the
	// write of its outcome (updateJobAcking).
	ack *pendingAck
}

// actionEnd is how an action ended, to be recorded.
type actionEnd struct {
	name    string
	status  resource.Status
	msg     string
	outputs map[string]any
	at      time.Time
	// startedAt, when set, is when the action started, for an action
	// whose start was recorded early (with its job's start).
	startedAt *time.Time
}

// runJob executes one job of a run and records the outcome. Every write it
// makes for the job carries a new execution ID; a write finding another
// execution's ID means the job was taken over, and this one stops.
func (o *Orchestrator) runJob(ctx context.Context, it jobItem, ack *pendingAck) disposition {
	s, d := o.startJob(ctx, it, "")
	if s == nil {
		return d
	}
	s.ack = ack
	return o.runStarted(ctx, s)
}

// startedJob is a job marked running as a new execution: what running it
// needs. The embedded worker makes it from the database; a remote
// worker gets it from the server (remote_client.go).
type startedJob struct {
	it     jobItem
	exec   string
	run    *resource.Run // the run's summary
	js     resource.JobStatus
	p      *plan
	pj     *planJob
	resume int
	// timeout bounds the execution: the job's own, or what is left of
	// its run's; timeoutReason is the job's reason when it passes.
	timeout       time.Duration
	timeoutReason string
	// premarked is the job's first action when the write that marked the
	// job running marked it running too (one write instead of two at the
	// start of every job: firstAction).
	premarked string
	// ack, for the embedded worker, is its queue item's ack, made with
	// the write of the job's outcome when the database can.
	ack *pendingAck
}

// startJob marks a leased job running as a new execution of worker (""
// for this server's own). It returns nil, with what to do with the queue
// item, when the job is not to run: it ended, its run ended or timed out,
// or it was interrupted too often (then it is failed here).
func (o *Orchestrator) startJob(ctx context.Context, it jobItem, worker string) (*startedJob, disposition) {
	bg := context.WithoutCancel(ctx)
	exec := newExecutionID()
	var (
		run                *resource.Run
		js                 resource.JobStatus
		p                  *plan
		pj                 *planJob
		resume             int
		recovered, tooMany bool
		premarked          string
	)
	// The run may have ended on another server a moment ago, before this
	// one heard of it: its summary says so. (A run that ends after this
	// read stops the job through stopRunJobs, since the job is already
	// listed as running here.)
	if cur := (&resource.Run{}); o.store.get(ctx, resource.KindRun, it.Namespace, it.Run, cur) == nil && cur.Status.Terminal() {
		o.forgetRun(it.Namespace, it.Run)
		return nil, done
	}
	now := o.now()
	err := o.withRun(ctx, it.Namespace, it.Run, func(st *runState) error {
		if st.run.Status.Terminal() {
			return errStale // cancelled or ended
		}
		i, ok := st.index(it.Job)
		if !ok {
			return errStale
		}
		cur := st.run.Jobs[i]
		if cur.Status != resource.StatusQueued && cur.Status != resource.StatusRunning {
			return errStale // already done
		}
		p, pj = st.p, &st.p.Jobs[i]
		resume = cur.Resume
		// A job found running was interrupted: its worker stopped without
		// handing it back (killed, or cut off from the database).
		recovered = cur.Status == resource.StatusRunning
		// Mark the job running, as this execution.
		err := st.updateJob(ctx, i, func(j *resource.JobStatus) error {
			tooMany = false
			if j.Status != resource.StatusQueued && j.Status != resource.StatusRunning {
				return errStale
			}
			if recovered {
				j.Interruptions++
				if j.Interruptions > o.opts.MaxInterruptions {
					tooMany = true
					return errStale
				}
				j.Transitions = append(j.Transitions, resource.Transition{Status: resource.StatusRunning, At: now,
					Reason: fmt.Sprintf("picked up again after its worker stopped (interruption %d of at most %d)", j.Interruptions, o.opts.MaxInterruptions)})
			}
			j.Execution = exec
			j.Worker = worker
			setJob(j, resource.StatusRunning, "", now)
			if j.Attempt == 0 {
				j.Attempt = 1
			}
			premarked = ""
			if pj.Uses == "" {
				resetActions(j, pj.Actions, resume)
				// A job of this server's own starts its first action
				// at once: both are recorded in this write.
				if k := firstAction(pj.Actions, resume); k >= 0 && worker == "" && o.remote == nil {
					setAction(&j.Actions[k], resource.StatusRunning, "", now)
					premarked = pj.Actions[k].Name
				}
			}
			return nil
		})
		if tooMany {
			return nil
		}
		run, js = st.summaryCopy(), st.run.Jobs[i]
		return err
	})
	if tooMany {
		return nil, o.finishJob(bg, it, "", jobOutcome{status: resource.StatusFailure,
			reason: fmt.Sprintf("interrupted %d times: its worker stopped while it ran each time", o.opts.MaxInterruptions+1), noRetry: true}, true)
	}
	if errors.Is(err, errStale) {
		return nil, done
	}
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, done // the run was deleted
	}
	if err != nil {
		o.log.Error("mark job running", "run", it.Run, "job", it.Job, "error", err)
		return nil, handBack
	}

	timeout := pj.Timeout
	if timeout == 0 {
		timeout = o.opts.DefaultRunTimeout
	}
	s := &startedJob{it: it, exec: exec, run: run, js: js, p: p, pj: pj, resume: resume, premarked: premarked}
	if run.StartedAt != nil {
		runTimeout := p.Timeout
		if runTimeout == 0 {
			runTimeout = o.opts.DefaultRunTimeout
		}
		if left := time.Until(run.StartedAt.Add(runTimeout)); left < timeout {
			timeout, s.timeoutReason = left, fmt.Sprintf("the run timed out after %s", runTimeout)
			if left <= 0 {
				// The run's time ran out before the job could start (the
				// server was down, say): the run ends now, and the job
				// never starts.
				if _, err := o.endRun(bg, it.Namespace, it.Run, resource.StatusFailure, fmt.Sprintf("run timed out after %s", runTimeout)); err != nil && !errors.Is(err, sdk.ErrFailedPrecondition) {
					o.log.Warn("time out run", "run", it.Run, "error", err)
				}
				return nil, done
			}
		}
	}
	s.timeout = timeout
	return s, done
}

// runStarted runs a started job to its end and records how it ended: on
// this server, or through the server for a remote worker.
func (o *Orchestrator) runStarted(ctx context.Context, s *startedJob) disposition {
	bg := context.WithoutCancel(ctx)
	it := s.it
	jctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	js := s.js
	out := o.execute(jctx, s.run, s.p, s.pj, &js, s.resume, s.exec, s.premarked)
	if out.status == resource.StatusFailure && errors.Is(jctx.Err(), context.DeadlineExceeded) {
		out.reason = fmt.Sprintf("timed out after %s", s.timeout.Round(time.Millisecond))
		if s.timeoutReason != "" {
			out.reason = s.timeoutReason
		}
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errLeaseLost), errors.Is(cause, errFenced):
		o.log.Warn("job stopped; another execution may run it", "run", it.Run, "job", it.Job, "why", cause)
		return lost
	case errors.Is(cause, errShutdown) && out.status != resource.StatusWaiting:
		if o.remote != nil {
			return o.remote.interrupt(bg, s, cause.Error(), false)
		}
		return o.interruptJob(bg, it, s.exec, cause.Error(), false)
	case errors.Is(cause, errRunCancelled) && out.status != resource.StatusWaiting:
		out.status, out.reason = resource.StatusCancelled, "cancelled"
	case out.interrupted != "":
		if o.remote != nil {
			return o.remote.interrupt(bg, s, out.interrupted, true)
		}
		return o.interruptJob(bg, it, s.exec, out.interrupted, true)
	}
	if o.remote != nil {
		return o.remote.finish(bg, s, out)
	}
	out.ack = s.ack
	return o.finishJob(bg, it, s.exec, out, false)
}

// interruptJob hands a job stopped from the outside back to the queue: it
// runs again, from where an approval left it, without using up a retry.
// Crashes are counted (see MaxInterruptions); stops of the server are not.
func (o *Orchestrator) interruptJob(ctx context.Context, it jobItem, exec, why string, counted bool) disposition {
	failed := false
	err := o.withRun(ctx, it.Namespace, it.Run, func(st *runState) error {
		i, ok := st.index(it.Job)
		if st.run.Status.Terminal() || !ok {
			return errStale
		}
		return st.updateJob(ctx, i, func(j *resource.JobStatus) error {
			failed = false
			if j.Status.Terminal() || j.Execution != exec {
				return errStale
			}
			if counted {
				j.Interruptions++
				if j.Interruptions > o.opts.MaxInterruptions {
					failed = true
					return errStale
				}
			}
			now := o.now()
			for k := range j.Actions {
				if as := &j.Actions[k]; as.Status == resource.StatusRunning {
					setAction(as, resource.StatusPending, "interrupted: "+why, now)
					as.StartedAt = nil
				}
			}
			j.Execution = ""
			setJob(j, resource.StatusQueued, "interrupted ("+why+"); it runs again", now)
			return nil
		})
	})
	if failed {
		err = nil
	}
	switch {
	case errors.Is(err, errStale):
		return done
	case err != nil:
		o.log.Error("hand an interrupted job back", "run", it.Run, "job", it.Job, "error", err)
		return lost // its lease expires and it is picked up again
	case failed:
		return o.finishJob(ctx, it, exec, jobOutcome{status: resource.StatusFailure,
			reason: fmt.Sprintf("interrupted %d times, the last: %s", o.opts.MaxInterruptions+1, why), noRetry: true}, false)
	}
	o.log.Warn("job interrupted; it runs again", "run", it.Run, "job", it.Job, "why", why)
	return handBack
}

var errStale = errors.New("stale job")

// execute runs a job's actions on its engine.
func (o *Orchestrator) execute(ctx context.Context, run *resource.Run, p *plan, pj *planJob, js *resource.JobStatus, resume int, exec, premarked string) (outcome jobOutcome) {
	ctx, release := o.holdPlugins(ctx) // the job runs on the plugin versions current now
	defer release()
	var e *execution
	if premarked != "" {
		defer func() {
			if e == nil || !e.premarkedRan {
				outcome.unreached = premarked
			}
		}()
	}
	ns := run.Namespace
	exprCtx := func(refs *jobRefs) map[string]any {
		return o.exprContextOf(context.WithoutCancel(ctx), run, p, pj.Name, refs)
	}
	actions := pj.Actions
	get, put := pj.Get, pj.Put
	if pj.Uses != "" {
		exp, err := o.expand(ctx, run, p, pj, exprCtx(refsOf(pj.With, pj.Params)))
		if err != nil {
			return jobOutcome{status: resource.StatusFailure, reason: err.Error()}
		}
		actions, get, put = exp.actions, append(get, exp.get...), append(put, exp.put...)
	}
	engType, engOpts, named := o.engineFor(p, pj)
	around := func(a []planAction) []planAction { return withEngineJobs(named, a) }
	isNamed := named != nil
	if o.remote != nil {
		// The server resolved the engine (its named engines are in its
		// configuration).
		engType, engOpts, isNamed, around = o.remote.engine(ns, run.Name, pj.Name)
	}
	if pj.Uses != "" {
		actions = around(actions)
	}
	if pj.Uses != "" {
		// The job type's actions are known now: record them before running.
		if err := o.recordActions(ctx, ns, run.Name, pj, exec, actions, resume); err != nil {
			if errors.Is(err, errFenced) {
				o.fenced(run, pj.Name)
			}
			return jobOutcome{status: resource.StatusFailure, reason: "record actions: " + err.Error()}
		}
	}

	if !isNamed && len(engOpts) > 0 {
		// An inline engine of a pipeline applied before its type said what
		// a pipeline may set is checked here too.
		idx, err := o.typeIdx(ctx)
		if err != nil {
			return jobOutcome{status: resource.StatusFailure, reason: err.Error()}
		}
		msgs, err := o.inlineProblems(ctx, idx, engType, engOpts)
		if err != nil {
			return jobOutcome{status: resource.StatusFailure, reason: err.Error(), noRetry: isNotStarted(err)}
		}
		if len(msgs) > 0 {
			return jobOutcome{status: resource.StatusFailure, reason: "engine: " + strings.Join(msgs, "; "), noRetry: true}
		}
	}
	eng, err := o.engineClient(ctx, engType)
	if err != nil {
		return jobOutcome{status: resource.StatusFailure, reason: err.Error(), noRetry: isNotStarted(err)}
	}
	ws, err := eng.Setup(ctx, &engine.SetupRequest{Options: engOpts, Namespace: ns, Pipeline: run.Pipeline, Run: run.Name, Job: pj.Name})
	if err != nil {
		if errors.Is(err, sdk.ErrPluginStopped) {
			return jobOutcome{status: resource.StatusFailure, interrupted: "the engine stopped during its setup: " + err.Error()}
		}
		return jobOutcome{status: resource.StatusFailure, reason: "engine setup: " + err.Error()}
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := eng.Teardown(tctx, ws.ID); err != nil {
			o.log.Warn("engine teardown", "run", run.Name, "job", pj.Name, "error", err)
		}
	}()

	env, err := o.jobEnv(ctx, run, p, pj, ws)
	if err != nil {
		return jobOutcome{status: resource.StatusFailure, reason: err.Error()}
	}
	ref := sdk.ExecutionRef{Namespace: ns, Pipeline: run.Pipeline, Run: run.Name, Job: pj.Name, Attempt: js.Attempt}
	e = &execution{ref: ref, id: exec, engine: eng, workspace: ws, env: env, first: firstExecution(js, resume), premarked: premarked,
		scope: storage.Scope{Kind: storage.ScopeRun, Namespace: ns, Pipeline: run.Pipeline, Run: run.Name}}
	defer o.register(e)()

	if err := o.storageGet(ctx, run, eng, ws, get); err != nil {
		return jobOutcome{status: resource.StatusFailure, reason: err.Error()}
	}

	outcome = jobOutcome{status: resource.StatusSuccess, outputs: map[string]any{}}
	for _, prev := range js.Actions {
		if prev.Status == resource.StatusSuccess {
			maps.Copy(outcome.outputs, prev.Outputs)
		}
	}
	// The engine's setup actions run at every execution, the job's own
	// from where an approval left them, and the engine's teardown after
	// them whatever happened (engines.go).
	teardown := len(actions)
	for teardown > 0 && actions[teardown-1].Phase == phaseTeardown {
		teardown--
	}
actions:
	for i := 0; i < teardown; i++ {
		a := actions[i]
		if !runsFrom(a, i, resume) {
			continue
		}
		if ctx.Err() != nil {
			outcome.status, outcome.reason = resource.StatusFailure, ctx.Err().Error()
			break
		}
		// The last action's end, when nothing runs after it, is recorded
		// with the job's end (finishJob).
		var end *actionEnd
		if i == teardown-1 && teardown == len(actions) && len(put) == 0 && o.remote == nil {
			end = &actionEnd{}
		}
		st, msg, outputs := o.runAction(ctx, run, p, pj, a, ref, exprCtx, end)
		if end != nil && end.name != "" {
			outcome.lastAction = end
		}
		if why := e.interruptedBy(); why != "" {
			if end != nil && end.name != "" {
				o.recordActionEnd(ctx, run, pj, e, end) // the job does not end here
			}
			return jobOutcome{status: resource.StatusFailure, interrupted: why, outputs: outcome.outputs}
		}
		if e.pluginDown.Load() {
			outcome.noRetry = true
		}
		maps.Copy(outcome.outputs, outputs)
		switch st {
		case resource.StatusWaiting:
			outcome.status, outcome.reason, outcome.resume = resource.StatusWaiting, msg, i+1
			break actions
		case resource.StatusSuccess:
			switch a.OnSuccess {
			case "succeed":
				if a.Phase == phaseSetup {
					continue // ends the setup, not the job: the job's own actions follow
				}
				break actions
			case "fail":
				outcome.status, outcome.reason = resource.StatusFailure, fmt.Sprintf("action %s succeeded and its on_success is fail", a.Name)
				break actions
			}
		case resource.StatusFailure, resource.StatusCancelled:
			switch a.OnFailure {
			case "continue":
			case "succeed":
				if a.Phase != phaseSetup {
					break actions
				}
			default:
				outcome.status = resource.StatusFailure
				outcome.reason = fmt.Sprintf("action %s failed", a.Name)
				if msg != "" {
					outcome.reason += ": " + msg
				}
				break actions
			}
		}
	}
	if teardown < len(actions) {
		if out, stop := o.engineTeardown(ctx, run, p, pj, actions[teardown:], ref, exprCtx, e); stop {
			return out
		} else if out.reason != "" && outcome.status != resource.StatusFailure {
			outcome.status, outcome.reason = resource.StatusFailure, out.reason
		}
	}
	if outcome.status == resource.StatusSuccess {
		if err := o.storagePut(ctx, run, eng, ws, put); err != nil {
			return jobOutcome{status: resource.StatusFailure, reason: err.Error(), outputs: outcome.outputs}
		}
	}
	return outcome
}

// recordActions records the actions of a job type once expanded, as
// execution exec.
func (o *Orchestrator) recordActions(ctx context.Context, ns, run string, pj *planJob, exec string, actions []planAction, resume int) error {
	if len(actions) > MaxActionsPerJob {
		return fmt.Errorf("%w: job type %s gave job %s %d actions, more than the %d a job may have", errTooLarge, pj.Uses, pj.Name, len(actions), MaxActionsPerJob)
	}
	if o.remote != nil {
		return o.remote.recordActions(ctx, ns, run, pj.Name, actions, resume)
	}
	return o.updateJob(ctx, ns, run, pj.Name, func(j *resource.JobStatus) error {
		if j.Execution != exec {
			return errFenced
		}
		resetActions(j, actions, resume)
		return nil
	})
}

// recordAction records an action's status, message and outputs, as
// execution exec: errFenced when another execution holds the job, and
// errStale when the job ended meanwhile (its run was cancelled).
func (o *Orchestrator) recordAction(ctx context.Context, ns, run, job, exec, action string, st resource.Status, msg string, outputs map[string]any) error {
	if o.remote != nil {
		return o.remote.recordAction(ctx, ns, run, job, action, st, msg, outputs)
	}
	now := o.now()
	return o.updateJob(ctx, ns, run, job, func(j *resource.JobStatus) error {
		if exec != "" && j.Execution != exec {
			return errFenced
		}
		if j.Status.Terminal() {
			return errStale // the run ended (cancelled): its record stands
		}
		if as := j.Action(action); as != nil {
			setAction(as, st, msg, now)
			as.Outputs = outputs
		}
		return nil
	})
}

// firstExecution reports whether a job marked running never ran before:
// its first attempt, from its first action, and its transitions hold one
// start only (a job handed back, interrupted or resumed holds more).
func firstExecution(js *resource.JobStatus, resume int) bool {
	if js == nil || js.Attempt > 1 || js.Interruptions > 0 || resume > 0 {
		return false
	}
	starts := 0
	for _, t := range js.Transitions {
		if t.Status == resource.StatusRunning {
			starts++
		}
	}
	return starts == 1
}

// recordActionAt records an action's state x as of x.at.
func (o *Orchestrator) recordActionAt(ctx context.Context, ns, run, job, exec string, x *actionEnd) error {
	return o.updateJob(ctx, ns, run, job, func(j *resource.JobStatus) error {
		if exec != "" && j.Execution != exec {
			return errFenced
		}
		if j.Status.Terminal() {
			return errStale // the run ended (cancelled): its record stands
		}
		if as := j.Action(x.name); as != nil {
			setActionEnd(as, x)
		}
		return nil
	})
}

// setActionEnd applies x to the action's status.
func setActionEnd(as *resource.ActionStatus, x *actionEnd) {
	setAction(as, x.status, x.msg, x.at)
	as.Outputs = x.outputs
	if x.startedAt != nil {
		as.StartedAt = x.startedAt
	}
}

// runsFrom says whether action i of a job runs when the job resumes from
// its action resume: the engine's setup actions run at every execution,
// the job's own from where an approval left them.
func runsFrom(a planAction, i, resume int) bool {
	return i >= resume || a.Phase == phaseSetup
}

// firstAction is the index of the job's first action to run from resume
// on when its start can be recorded with the job's (it has no if), or -1.
func firstAction(actions []planAction, resume int) int {
	for i, a := range actions {
		if !runsFrom(a, i, resume) {
			continue
		}
		if a.If != "" {
			return -1
		}
		return i
	}
	return -1
}

// expanded is a job type's expansion.
type expanded struct {
	actions  []planAction
	get, put []storageEntry
}

func (o *Orchestrator) expand(ctx context.Context, run *resource.Run, p *plan, pj *planJob, ectx map[string]any) (*expanded, error) {
	ref, err := o.lookupType(ctx, sdk.CategoryJob, pj.Uses)
	if err != nil {
		return nil, err
	}
	with, err := o.interpolateAll(pj.With, ectx)
	if err != nil {
		return nil, fmt.Errorf("with: %w", err)
	}
	if with == nil {
		with = map[string]any{}
	}
	if err := o.checkParams(ctx, sdk.CategoryJob, ref, pj.Uses, "with", with); err != nil {
		return nil, err
	}
	jc, err := o.jobClient(ctx, ref)
	if err != nil {
		return nil, err
	}
	resp, err := jc.Expand(ctx, &job.ExpandRequest{Type: ref.name, JobName: pj.Name, With: with, Context: ectx})
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", pj.Uses, err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		var s []string
		for _, d := range resp.Diagnostics {
			s = append(s, d.Field+": "+d.Summary)
		}
		return nil, fmt.Errorf("expand %s: %s", pj.Uses, strings.Join(s, "; "))
	}
	out := &expanded{}
	for _, a := range resp.Actions {
		out.actions = append(out.actions, planAction{Name: a.Name, Type: a.Type, If: a.If, Params: a.Params, OnSuccess: a.OnSuccess, OnFailure: a.OnFailure})
	}
	for _, e := range resp.StorageGet {
		out.get = append(out.get, storageEntry{Path: e.Path, Scope: e.Scope, Key: e.Key})
	}
	for _, e := range resp.StoragePut {
		out.put = append(out.put, storageEntry{Path: e.Path, Scope: e.Scope, Key: e.Key})
	}
	return out, nil
}

// runAction runs one action and records its status, outputs and log.
//
// When end is not nil, the action's end (not its start) is not written but
// left in end, for the caller to record with the job's end.
func (o *Orchestrator) runAction(ctx context.Context, run *resource.Run, p *plan, pj *planJob, a planAction, ref sdk.ExecutionRef, exprCtx func(*jobRefs) map[string]any, end *actionEnd) (resource.Status, string, map[string]any) {
	ns := run.Namespace
	e := o.executionOf(ref)
	var startedAt *time.Time
	record := func(st resource.Status, msg string, outputs map[string]any) {
		x := &actionEnd{name: a.Name, status: st, msg: clipMessage(msg), outputs: outputs, at: o.now(), startedAt: startedAt}
		if end != nil && st.Terminal() {
			*end = *x
			return
		}
		o.recordActionEnd(ctx, run, pj, e, x)
	}
	ectx := exprCtx(refsOf(a.If, a.Params))
	if err := checkContextSize(ectx, a.Name); err != nil {
		record(resource.StatusFailure, err.Error(), nil)
		return resource.StatusFailure, err.Error(), nil
	}
	if a.If != "" {
		ok, err := o.eval().EvalBool(a.If, ectx)
		if err != nil {
			record(resource.StatusFailure, "if: "+err.Error(), nil)
			return resource.StatusFailure, "if: " + err.Error(), nil
		}
		if !ok {
			record(resource.StatusSkipped, "if: "+a.If+" is false", nil)
			return resource.StatusSkipped, "", nil
		}
	}
	if e != nil && e.premarked == a.Name && !e.premarkedRan {
		// Recorded running with the job's start: its real start is
		// recorded with its end.
		e.premarkedRan = true
		now := o.now()
		startedAt = &now
	} else {
		record(resource.StatusRunning, "", nil)
	}
	key := logKey(ns, run.Name, pj.Name, a.Name)
	lg := o.openLog(run, pj.Name, a.Name, o.maskerFor(ref), e != nil && e.first)
	closeLog := sync.OnceFunc(func() {
		o.saveLog(context.WithoutCancel(ctx), run, pj.Name, a.Name, lg)
		o.logs.close(key)
	})
	defer closeLog()
	// The action's end is recorded once its whole log is stored: a
	// follower on another server, which reads the log from storage, has
	// read all of it once it sees the action ended.
	running := record
	record = func(st resource.Status, msg string, outputs map[string]any) {
		if st.Terminal() || st == resource.StatusWaiting {
			closeLog()
		}
		running(st, msg, outputs)
	}

	mask := o.maskerFor(ref)
	failErr := func(err error) (resource.Status, string, map[string]any) {
		if isNotStarted(err) && e != nil {
			e.pluginDown.Store(true)
		}
		msg := mask(err.Error())
		lg.line("system", msg)
		record(resource.StatusFailure, msg, nil)
		return resource.StatusFailure, msg, nil
	}
	fail := func(msg string) (resource.Status, string, map[string]any) {
		msg = mask(msg)
		lg.line("system", msg)
		record(resource.StatusFailure, msg, nil)
		return resource.StatusFailure, msg, nil
	}
	params, err := o.actionParams(a, ectx)
	if err != nil {
		return failErr(err)
	}
	tref, err := o.lookupType(ctx, sdk.CategoryAction, a.Type)
	if err != nil {
		return failErr(err)
	}
	if err := o.checkParams(ctx, sdk.CategoryAction, tref, a.Type, "params", params); err != nil {
		return failErr(err)
	}
	ac, err := o.actionClient(ctx, tref)
	if err != nil {
		return failErr(err)
	}
	actx := ctx
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	aref := ref
	aref.Action = a.Name
	res, err := ac.Run(sdk.WithExecution(actx, aref), &action.RunRequest{Type: tref.name, Name: a.Name, Params: params, Context: ectx, Ref: aref}, logEvents{lg})
	if err != nil && errors.Is(err, sdk.ErrPluginStopped) && ctx.Err() == nil && e != nil {
		// The action's plugin stopped under it: the job is interrupted,
		// not failed, and runs again once the plugin is back.
		e.interrupt(fmt.Sprintf("plugin %s stopped while action %s ran: %v", tref.plugin, a.Name, err))
	}
	if why := e.interruptedBy(); why != "" {
		lg.line("system", "interrupted: "+why+"; the job runs again")
		return resource.StatusFailure, why, nil
	}
	if err != nil {
		if actionTimedOut(ctx, actx, a.Timeout, err) {
			return fail(fmt.Sprintf("timed out after %s", a.Timeout))
		}
		return fail(err.Error())
	}
	// Secret values never reach the run's record, whatever the plugin sent.
	res.Message, res.Outputs = o.MaskResult(aref, res.Message, res.Outputs)
	st := statusOf(res.Status)
	if res.Message != "" {
		lg.line("system", res.Message)
	}
	if err := o.checkOutputs(ctx, ns, run.Name, pj.Name, a.Name, res.Outputs); err != nil {
		return fail(err.Error())
	}
	record(st, res.Message, res.Outputs)
	return st, res.Message, res.Outputs
}

func statusOf(s action.Status) resource.Status {
	switch s {
	case action.StatusSuccess:
		return resource.StatusSuccess
	case action.StatusWaiting:
		return resource.StatusWaiting
	case action.StatusSkipped:
		return resource.StatusSkipped
	case action.StatusCancelled:
		return resource.StatusCancelled
	}
	return resource.StatusFailure
}

// logEvents writes an action's events into its log.
type logEvents struct{ l *actionLog }

func (e logEvents) Log(stream, text string) error {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		e.l.line(stream, line)
	}
	return nil
}

func (e logEvents) Output(string, any) error { return nil }

// actionParams interpolates `${{ }}` in an action's string parameters.
// `expr` (compare) and `if` are expressions themselves and stay as written.
func (o *Orchestrator) actionParams(a planAction, ectx map[string]any) (map[string]any, error) {
	scripts, err := o.scriptsOf(a.Type) // scripts get their values through env (script.go)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range a.Params {
		if k == "expr" || scripts.has(k) {
			out[k] = v
			continue
		}
		iv, err := o.interpolateValue(v, ectx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = iv
	}
	return scripts.rewrite(a.Name, out, ectx)
}

func (o *Orchestrator) interpolateAll(m map[string]any, ectx map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range m {
		iv, err := o.interpolateValue(v, ectx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = iv
	}
	return out, nil
}

func (o *Orchestrator) interpolateValue(v any, ectx map[string]any) (any, error) {
	switch t := v.(type) {
	case string:
		return o.eval().Interpolate(t, ectx)
	case map[string]any:
		return o.interpolateAll(t, ectx)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			iv, err := o.interpolateValue(e, ectx)
			if err != nil {
				return nil, err
			}
			out[i] = iv
		}
		return out, nil
	}
	return v, nil
}

// recordActionEnd records an action's status, message and outputs, as the
// execution e (nil: any).
func (o *Orchestrator) recordActionEnd(ctx context.Context, run *resource.Run, pj *planJob, e *execution, x *actionEnd) {
	exec := ""
	if e != nil {
		exec = e.id
	}
	var err error
	if o.remote == nil {
		err = o.recordActionAt(context.WithoutCancel(ctx), run.Namespace, run.Name, pj.Name, exec, x)
	} else {
		err = o.recordAction(context.WithoutCancel(ctx), run.Namespace, run.Name, pj.Name, exec, x.name, x.status, x.msg, x.outputs)
	}
	if err != nil {
		if errors.Is(err, errFenced) {
			o.fenced(run, pj.Name)
			return
		}
		if errors.Is(err, errStale) {
			return
		}
		o.log.Error("record action status", "run", run.Name, "job", pj.Name, "action", x.name, "error", err)
	}
}

// finishJob records a job's outcome, retries it or releases what it holds,
// and advances the run.
// Unless unfenced (for a job this execution never marked running), it
// records nothing when another execution has taken the job over.
func (o *Orchestrator) finishJob(ctx context.Context, it jobItem, exec string, out jobOutcome, unfenced bool) disposition {
	ctx = context.WithoutCancel(ctx)
	var queued []jobItem
	var run *resource.Run
	err := o.withRun(ctx, it.Namespace, it.Run, func(st *runState) error {
		i, ok := st.index(it.Job)
		if st.run.Status.Terminal() || !ok {
			// A job not ended when its run ended is cancelled by that.
			return errStale
		}
		pj := &st.p.Jobs[i]
		now := o.now()
		retry := false
		if err := st.updateJobAcking(ctx, i, out.ack, func(j *resource.JobStatus) error {
			retry = false
			if j.Status.Terminal() {
				return errStale
			}
			if !unfenced && j.Execution != exec {
				return errFenced
			}
			j.Execution = ""
			j.Outputs = out.outputs
			if la := out.lastAction; la != nil {
				if as := j.Action(la.name); as != nil {
					setActionEnd(as, la)
				}
			}
			if as := j.Action(out.unreached); out.unreached != "" && as != nil && as.Status == resource.StatusRunning {
				as.Status, as.StartedAt = resource.StatusPending, nil // not reached, below
			}
			if out.status != resource.StatusWaiting {
				// Actions the job did not reach.
				for k := range j.Actions {
					switch as := &j.Actions[k]; as.Status {
					case resource.StatusPending:
						setAction(as, resource.StatusSkipped, "not reached", now)
					case resource.StatusRunning, resource.StatusQueued:
						// Its execution stopped from outside: it ends
						// with its job.
						setAction(as, out.status, out.reason, now)
					}
				}
			}
			switch {
			case out.status == resource.StatusWaiting:
				setJob(j, resource.StatusWaiting, out.reason, now)
				j.Resume = out.resume
			case out.status == resource.StatusFailure && j.Attempt <= pj.Retries && !out.noRetry:
				j.Attempt++
				setJob(j, resource.StatusQueued, fmt.Sprintf("attempt %d failed (%s); retrying", j.Attempt-1, out.reason), now)
				j.Resume = 0
				retry = true
			default:
				setJob(j, out.status, clipMessage(out.reason), now)
			}
			return nil
		}); err != nil {
			return err
		}
		j := &st.run.Jobs[i]
		switch {
		case j.Status == resource.StatusWaiting:
			if err := st.updateRun(ctx, func(r *resource.Run) error {
				resource.SetStatus(&r.Status, &r.Transitions, resource.StatusWaiting, "job "+j.Name+" is waiting for approval", now)
				return nil
			}); err != nil {
				return err
			}
		case retry:
			queued = append(queued, jobItem{Namespace: it.Namespace, Run: it.Run, Job: it.Job, Attempt: j.Attempt, RunsOn: pj.RunsOn})
		default:
			more, err := o.advanceRun(ctx, st)
			queued = append(queued, more...)
			if err != nil {
				return err
			}
		}
		run = st.summaryCopy()
		return nil
	})
	if len(queued) > 0 {
		if err := o.enqueue(ctx, queued...); err != nil {
			o.log.Error("enqueue jobs", "run", it.Run, "error", err)
		}
	}
	wasAcked := out.ack != nil && out.ack.done.Load()
	switch {
	case errors.Is(err, errStale) && wasAcked:
		return acked
	case errors.Is(err, errStale):
		return done
	case errors.Is(err, errFenced):
		o.log.Warn("job taken over by another execution; its outcome here is not recorded", "run", it.Run, "job", it.Job)
		return lost
	case err != nil && wasAcked:
		// The outcome is recorded (and its item acked); what failed is
		// the run's next step, left to the run's recovery as when the
		// item was left to lapse.
		o.log.Error("advance the run after a job's outcome", "run", it.Run, "job", it.Job, "error", err)
		return acked
	case err != nil:
		// Not recorded: leave the item to be leased again once its lease
		// expires, rather than lose the job.
		o.log.Error("record job outcome", "run", it.Run, "job", it.Job, "error", err)
		return lost
	}
	if run.Status.Terminal() {
		o.runEnded(ctx, run)
	}
	if wasAcked {
		return acked
	}
	return done
}

// fenced stops this process's execution of a job another execution has
// taken over.
func (o *Orchestrator) fenced(run *resource.Run, job string) {
	o.mu.Lock()
	cancel := o.running[run.Namespace+"/"+run.Name+"/"+job]
	o.mu.Unlock()
	if cancel != nil {
		cancel(errFenced)
	}
}

// resetActions lists a job's actions in its status, pending from resume on.
func resetActions(j *resource.JobStatus, actions []planAction, resume int) {
	if len(j.Actions) != len(actions) {
		j.Actions = make([]resource.ActionStatus, len(actions))
	}
	for i, a := range actions {
		j.Actions[i].Name, j.Actions[i].Type = a.Name, a.Type
		if j.Actions[i].Status == "" || i >= resume {
			j.Actions[i].Status = resource.StatusPending
			j.Actions[i].StartedAt, j.Actions[i].FinishedAt, j.Actions[i].Message, j.Actions[i].Outputs = nil, nil, "", nil
		}
		j.Actions[i].LogKey = storageLogKey(j.Name, a.Name)
	}
}

// actionTimedOut reports whether an action's call failed because its own
// timeout passed. The plugin's side may end the stream a moment before the
// caller's timer fires, so a failure at the deadline counts too.
func actionTimedOut(jobCtx, actx context.Context, timeout time.Duration, err error) bool {
	if timeout <= 0 || jobCtx.Err() != nil {
		return false
	}
	if actx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	dl, ok := actx.Deadline()
	return ok && time.Until(dl) < 250*time.Millisecond
}
