package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/version"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/storage"
	workerv1 "github.com/palvella/palvella/proto/palvella/worker/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The server's side of the worker protocol (remote_client.go is the
// worker's): leasing for a remote worker, and every call a remote
// worker's job makes, each checked against the job's live execution.

// WorkerAuthorizer checks that a call of the worker service may act as
// the named worker, and returns the name of the token's identity.
type WorkerAuthorizer func(ctx context.Context, worker string) (identity string, err error)

// WorkerService returns the worker service this server offers remote
// workers. Every call is first checked by auth.
func (o *Orchestrator) WorkerService(auth WorkerAuthorizer) workerv1.WorkerServiceServer {
	return &workerService{o: o, auth: auth}
}

// workerBook is what a server keeps of the executions it leased to
// remote workers.
type workerBook struct {
	mu     sync.Mutex
	execs  map[string]*remoteExec // by execution
	kicked chan struct{}          // closed at each kick (leases waiting wake up)
}

// remoteExec is an execution leased to a remote worker through this
// server. Its context bounds what is issued for the job (its run token);
// it ends when the job is reported finished, or when no renewal came
// for twice the lease.
type remoteExec struct {
	ctx      context.Context
	cancel   context.CancelFunc
	worker   string
	job      string // namespace/run/job
	leasedAt time.Time
	renewed  time.Time
}

// kicked returns a channel closed at the next kick.
func (o *Orchestrator) kicked() <-chan struct{} {
	o.workers.mu.Lock()
	defer o.workers.mu.Unlock()
	if o.workers.kicked == nil {
		o.workers.kicked = make(chan struct{})
	}
	return o.workers.kicked
}

func (o *Orchestrator) kickRemote() {
	o.workers.mu.Lock()
	defer o.workers.mu.Unlock()
	if o.workers.kicked != nil {
		close(o.workers.kicked)
		o.workers.kicked = nil
	}
}

func (o *Orchestrator) trackRemote(exec string, e *remoteExec) {
	o.workers.mu.Lock()
	defer o.workers.mu.Unlock()
	if o.workers.execs == nil {
		o.workers.execs = map[string]*remoteExec{}
	}
	o.workers.execs[exec] = e
}

func (o *Orchestrator) remoteExecOf(exec string) *remoteExec {
	o.workers.mu.Lock()
	defer o.workers.mu.Unlock()
	return o.workers.execs[exec]
}

func (o *Orchestrator) endRemote(exec string) {
	o.workers.mu.Lock()
	e := o.workers.execs[exec]
	delete(o.workers.execs, exec)
	o.workers.mu.Unlock()
	if e != nil {
		e.cancel()
	}
}

// reapRemote ends the executions whose worker stopped renewing them.
func (o *Orchestrator) reapRemote(ctx context.Context) {
	t := time.NewTicker(o.opts.LeaseTTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var gone []string
		o.workers.mu.Lock()
		for id, e := range o.workers.execs {
			if time.Since(e.renewed) > 2*o.opts.LeaseTTL {
				gone = append(gone, id)
			}
		}
		o.workers.mu.Unlock()
		for _, id := range gone {
			o.endRemote(id)
		}
	}
}

// leaseAny leases an item from the first of the queues a worker with
// labels may take from that has one; the queues are tried from a
// different one each time, so that none starves the others.
func (o *Orchestrator) leaseAny(ctx context.Context, holder string, labels map[string]string) (*database.QueueItem, error) {
	db, err := o.database(ctx)
	if err != nil {
		return nil, err
	}
	queues := o.queuesFor(ctx, labels)
	first := int(o.leaseTurn.Add(1)) % len(queues)
	for k := range queues {
		q := queues[(first+k)%len(queues)]
		it, err := db.Lease(ctx, &database.LeaseRequest{Queue: q, Holder: holder, TTL: o.opts.LeaseTTL})
		if err != nil {
			return nil, err
		}
		if it != nil {
			return it, nil
		}
	}
	return nil, nil
}

// dispose does with a leased item what a job that did not start needs.
func (o *Orchestrator) dispose(ctx context.Context, item *database.QueueItem, d disposition, after time.Duration) {
	switch d {
	case done:
		o.ack(ctx, item)
	case handBack:
		o.nack(ctx, item, after)
	case acked, lost:
	}
}

type workerService struct {
	workerv1.UnimplementedWorkerServiceServer
	o    *Orchestrator
	auth WorkerAuthorizer
}

func (w *workerService) check(ctx context.Context, worker string) (string, error) {
	if err := workerName(worker); err != nil {
		return "", sdk.ToGRPC(err)
	}
	id, err := w.auth(ctx, worker)
	if err != nil {
		return "", sdk.ToGRPC(err)
	}
	return id, nil
}

// Heartbeat records the worker in its Worker document.
func (w *workerService) Heartbeat(ctx context.Context, req *workerv1.HeartbeatRequest) (*workerv1.HeartbeatResponse, error) {
	id, err := w.check(ctx, req.GetWorker())
	if err != nil {
		return nil, err
	}
	if req.GetProtocol() != WorkerProtocol {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrFailedPrecondition, "protocol", "this server speaks worker protocol %d, the worker %d: run the server's version of palvella on the worker (server %s)", WorkerProtocol, req.GetProtocol(), version.Version))
	}
	o := w.o
	now := o.now()
	status := resource.WorkerStatus{Labels: req.GetLabels(), Version: req.GetVersion(), Capacity: int(req.GetCapacity()),
		Jobs: slices.Clone(req.GetJobs()), Identity: id, StartedAt: req.GetStartedAt().AsTime().UTC(), LastHeartbeat: now, Server: o.holder}
	if status.Jobs == nil {
		status.Jobs = []string{}
	}
	doc, err := o.putWorker(ctx, req.GetWorker(), func(wk *resource.Worker) { wk.Status = status })
	if err != nil {
		return nil, sdk.ToGRPC(fmt.Errorf("record the worker: %w", err))
	}
	return &workerv1.HeartbeatResponse{Drain: doc.Spec.Drain, LeaseTtl: durationpb.New(o.opts.LeaseTTL), Protocol: WorkerProtocol}, nil
}

// putWorker changes a worker's document, creating it when there is none.
func (o *Orchestrator) putWorker(ctx context.Context, name string, fn func(*resource.Worker)) (*resource.Worker, error) {
	for {
		doc, err := mutate(ctx, o.store, resource.KindWorker, "", name, func(wk *resource.Worker) error { fn(wk); return nil })
		if !errors.Is(err, sdk.ErrNotFound) {
			return doc, err
		}
		doc = &resource.Worker{Meta: resource.Meta{Kind: resource.KindWorker, Name: name}}
		fn(doc)
		if err := o.store.create(ctx, doc); !errors.Is(err, sdk.ErrAlreadyExists) {
			return doc, err
		}
	}
}

// Lease waits for a job the worker's labels select, leases it for the
// worker and marks it running as a new execution.
func (w *workerService) Lease(ctx context.Context, req *workerv1.LeaseRequest) (*workerv1.LeaseResponse, error) {
	if _, err := w.check(ctx, req.GetWorker()); err != nil {
		return nil, err
	}
	o := w.o
	name := req.GetWorker()
	var doc resource.Worker
	if err := o.store.get(ctx, resource.KindWorker, "", name, &doc); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return nil, sdk.ToGRPC(err)
	}
	if doc.Spec.Drain {
		return &workerv1.LeaseResponse{Drain: true}, nil
	}
	wait := min(max(req.GetWait().AsDuration(), 0), time.Minute)
	deadline := time.Now().Add(wait)
	labels := req.GetLabels()
	for {
		kicked := o.kicked()
		item, err := o.leaseAny(ctx, name, labels)
		if err != nil {
			return nil, sdk.ToGRPC(err)
		}
		if item != nil {
			// Drained while this call waited: the job is someone else's.
			var cur resource.Worker
			if err := o.store.get(ctx, resource.KindWorker, "", name, &cur); err == nil && cur.Spec.Drain {
				o.nack(context.WithoutCancel(ctx), item, 0)
				return &workerv1.LeaseResponse{Drain: true}, nil
			}
			a, err := o.assign(ctx, name, item)
			if err != nil {
				return nil, sdk.ToGRPC(err)
			}
			if a != nil {
				return &workerv1.LeaseResponse{Assignment: a}, nil
			}
			continue
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &workerv1.LeaseResponse{}, nil
		}
		select {
		case <-ctx.Done():
			return nil, sdk.ToGRPC(ctx.Err())
		case <-kicked:
		case <-time.After(min(left, 500*time.Millisecond)):
		}
	}
}

// assign starts a leased item's job for a remote worker; nil when the job
// is not to run (the item is disposed of).
func (o *Orchestrator) assign(ctx context.Context, worker string, item *database.QueueItem) (*workerv1.Assignment, error) {
	bg := context.WithoutCancel(ctx)
	var it jobItem
	if err := json.Unmarshal(item.Payload, &it); err != nil {
		o.log.Error("dropping a malformed queue item", "id", item.ID, "error", err)
		o.ack(bg, item)
		return nil, nil
	}
	s, d := o.startJob(bg, it, worker)
	if s == nil {
		o.dispose(bg, item, d, time.Second)
		return nil, nil
	}
	a, err := o.assignment(s, worker, item)
	if err != nil {
		// Not something a worker can run: fail the job.
		o.dispose(bg, item, o.finishJob(bg, it, s.exec, jobOutcome{status: resource.StatusFailure, reason: err.Error(), noRetry: true}, false), time.Second)
		return nil, nil
	}
	now := time.Now()
	ectx, cancel := context.WithTimeout(o.jobs, s.timeout+time.Minute)
	o.trackRemote(s.exec, &remoteExec{ctx: ectx, cancel: cancel, worker: worker, job: jobKey(it.Namespace, it.Run, it.Job), leasedAt: now, renewed: now})
	o.log.Info("job leased to a worker", "worker", worker, "run", it.Run, "job", it.Job, "namespace", it.Namespace, "execution", s.exec)
	return a, nil
}

// assignment describes a started job to the worker that runs it.
func (o *Orchestrator) assignment(s *startedJob, worker string, item *database.QueueItem) (*workerv1.Assignment, error) {
	pj := s.pj
	params, err := toStruct(pj.Params)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	with, err := toStruct(pj.With)
	if err != nil {
		return nil, fmt.Errorf("with: %w", err)
	}
	actions, err := actionsToProto(pj.Actions)
	if err != nil {
		return nil, err
	}
	typ, opts, named := o.engineFor(s.p, pj)
	eopts, err := toStruct(opts)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	eng := &workerv1.Engine{Type: typ, Options: eopts, Named: named != nil}
	var setup, teardown []planAction
	for _, a := range withEngineJobs(named, nil) {
		if a.Phase == phaseSetup {
			setup = append(setup, a)
		} else {
			teardown = append(teardown, a)
		}
	}
	if eng.Setup, err = actionsToProto(setup); err != nil {
		return nil, err
	}
	if eng.Teardown, err = actionsToProto(teardown); err != nil {
		return nil, err
	}
	a := &workerv1.Assignment{
		Claim: &workerv1.Claim{Queue: item.Queue, ItemId: item.ID, LeaseToken: item.LeaseToken, Namespace: s.it.Namespace, Run: s.it.Run,
			Job: s.it.Job, Attempt: int32(s.js.Attempt), Execution: s.exec, Worker: worker},
		LeaseTtl: durationpb.New(o.opts.LeaseTTL), Pipeline: s.run.Pipeline, RunNumber: s.run.Number,
		Job: &workerv1.Job{Name: pj.Name, Params: params, Uses: pj.Uses, With: with, Actions: actions,
			Get: entriesToProto(pj.Get), Put: entriesToProto(pj.Put)},
		Resume: int32(s.resume), Timeout: durationpb.New(s.timeout), TimeoutReason: s.timeoutReason, Engine: eng,
	}
	for _, as := range s.js.Actions {
		out, err := toStruct(as.Outputs)
		if err != nil {
			return nil, fmt.Errorf("outputs of %s: %w", as.Name, err)
		}
		a.Previous = append(a.Previous, &workerv1.ActionStatus{Name: as.Name, Status: string(as.Status), Outputs: out})
	}
	return a, nil
}

// Renew extends the lease of a claimed job.
func (w *workerService) Renew(ctx context.Context, req *workerv1.RenewRequest) (*workerv1.RenewResponse, error) {
	c := req.GetClaim()
	if _, err := w.check(ctx, c.GetWorker()); err != nil {
		return nil, err
	}
	o := w.o
	db, err := o.database(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if _, err := db.Renew(ctx, &database.RenewRequest{ID: c.GetItemId(), LeaseToken: c.GetLeaseToken(), TTL: o.opts.LeaseTTL}); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if e := o.remoteExecOf(c.GetExecution()); e != nil {
		o.workers.mu.Lock()
		e.renewed = time.Now()
		o.workers.mu.Unlock()
	}
	return &workerv1.RenewResponse{}, nil
}

// claimed checks that a claim is its job's live execution, and returns
// the job's run (its summary) and the run's state's plan job.
func (o *Orchestrator) claimed(ctx context.Context, c *workerv1.Claim) (*resource.Run, *plan, *planJob, error) {
	var (
		run  *resource.Run
		p    *plan
		pj   *planJob
		live bool
	)
	err := o.withRun(ctx, c.GetNamespace(), c.GetRun(), func(st *runState) error {
		i, ok := st.index(c.GetJob())
		if !ok {
			return sdk.Errorf(sdk.ErrNotFound, "claim.job", "run %s has no job %s", c.GetRun(), c.GetJob())
		}
		j := st.run.Jobs[i]
		live = j.Execution == c.GetExecution() && !j.Status.Terminal()
		run, p, pj = st.summaryCopy(), st.p, &st.p.Jobs[i]
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if !live {
		// This server's state may be behind the database (the job was
		// leased through another server): its document decides.
		var doc resource.Job
		if err := o.store.get(ctx, resource.KindJob, c.GetNamespace(), resource.JobResourceName(c.GetRun(), c.GetJob()), &doc); err == nil {
			live = doc.Execution == c.GetExecution() && !doc.Status.Terminal()
		}
	}
	if !live || c.GetExecution() == "" {
		return nil, nil, nil, sdk.Errorf(sdk.ErrConflict, "claim", "job %s of run %s is no longer execution %s's: another execution holds it, or it ended", c.GetJob(), c.GetRun(), c.GetExecution())
	}
	return run, p, pj, nil
}

func (w *workerService) claimed(ctx context.Context, c *workerv1.Claim) (*resource.Run, *plan, *planJob, error) {
	if _, err := w.check(ctx, c.GetWorker()); err != nil {
		return nil, nil, nil, err
	}
	run, p, pj, err := w.o.claimed(ctx, c)
	if err != nil {
		return nil, nil, nil, sdk.ToGRPC(err)
	}
	return run, p, pj, nil
}

// ExprContext is what the claimed job's expressions see now.
func (w *workerService) ExprContext(ctx context.Context, req *workerv1.ExprContextRequest) (*workerv1.ExprContextResponse, error) {
	c := req.GetClaim()
	if _, _, _, err := w.claimed(ctx, c); err != nil {
		return nil, err
	}
	refs := &jobRefs{all: req.GetAllJobs(), names: map[string]bool{}}
	for _, n := range req.GetJobs() {
		refs.names[n] = true
	}
	var out map[string]any
	if err := w.o.withRun(ctx, c.GetNamespace(), c.GetRun(), func(st *runState) error {
		out = exprContext(st.run, st.p, c.GetJob(), refs)
		return nil
	}); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	s, err := toStruct(out)
	if err != nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "context", "%v", err))
	}
	return &workerv1.ExprContextResponse{Context: s}, nil
}

// JobEnv reads the claimed job's credentials for the worker that runs it.
func (w *workerService) JobEnv(ctx context.Context, req *workerv1.JobEnvRequest) (*workerv1.JobEnvResponse, error) {
	c := req.GetClaim()
	run, p, pj, err := w.claimed(ctx, c)
	if err != nil {
		return nil, err
	}
	o := w.o
	// What is issued for the job (its run token) lasts as long as the
	// execution does here.
	ectx := context.WithoutCancel(ctx)
	if e := o.remoteExecOf(c.GetExecution()); e != nil {
		ectx = e.ctx
	} else {
		var cancel context.CancelFunc
		ectx, cancel = context.WithTimeout(o.jobs, pj.Timeout+o.opts.LeaseTTL*2+time.Minute)
		now := time.Now()
		o.trackRemote(c.GetExecution(), &remoteExec{ctx: ectx, cancel: cancel, worker: c.GetWorker(), job: jobKey(c.GetNamespace(), c.GetRun(), c.GetJob()), leasedAt: now, renewed: now})
	}
	env, secrets, err := o.jobEnvValues(ectx, run, p, pj, req.GetWorkdir())
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &workerv1.JobEnvResponse{Env: env, Secrets: secrets}, nil
}

// RecordActions records the actions of the claimed job's type.
func (w *workerService) RecordActions(ctx context.Context, req *workerv1.RecordActionsRequest) (*workerv1.RecordResponse, error) {
	c := req.GetClaim()
	if _, _, _, err := w.claimed(ctx, c); err != nil {
		return nil, err
	}
	actions := actionsFromProto(req.GetActions())
	if len(actions) > MaxActionsPerJob {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "actions", "%d actions, more than the %d a job may have", len(actions), MaxActionsPerJob))
	}
	err := w.o.updateJob(ctx, c.GetNamespace(), c.GetRun(), c.GetJob(), func(j *resource.JobStatus) error {
		if j.Execution != c.GetExecution() {
			return errFenced
		}
		resetActions(j, actions, int(req.GetResume()))
		return nil
	})
	return &workerv1.RecordResponse{}, recordErr(err)
}

// recordErr maps what a record of a job's progress met to the protocol's
// codes: another execution's job is a conflict, an ended one a failed
// precondition.
func recordErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errFenced):
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrConflict, "claim", "another execution holds the job"))
	case errors.Is(err, errStale):
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrFailedPrecondition, "claim", "the job ended (its run was cancelled or ended)"))
	}
	return sdk.ToGRPC(err)
}

// RecordAction records an action of the claimed job.
func (w *workerService) RecordAction(ctx context.Context, req *workerv1.RecordActionRequest) (*workerv1.RecordResponse, error) {
	c := req.GetClaim()
	if _, err := w.check(ctx, c.GetWorker()); err != nil {
		return nil, err
	}
	var outputs map[string]any
	if req.GetOutputs() != nil {
		outputs = req.GetOutputs().AsMap()
	}
	err := w.o.recordAction(ctx, c.GetNamespace(), c.GetRun(), c.GetJob(), c.GetExecution(), req.GetAction(),
		resource.Status(req.GetStatus()), clipMessage(req.GetMessage()), outputs)
	return &workerv1.RecordResponse{}, recordErr(err)
}

// objectRef is the object a worker's call names, in its claimed job's
// run or pipeline.
func (w *workerService) objectRef(ctx context.Context, c *workerv1.Claim, scope, key string) (storage.ObjectRef, error) {
	run, _, _, err := w.claimed(ctx, c)
	if err != nil {
		return storage.ObjectRef{}, err
	}
	ref := storage.ObjectRef{Scope: storage.Scope{Kind: storage.ScopeRun, Namespace: run.Namespace, Pipeline: run.Pipeline, Run: run.Name}, Key: key}
	switch scope {
	case "run":
	case "pipeline":
		ref.Scope = storage.Scope{Kind: storage.ScopePipeline, Namespace: run.Namespace, Pipeline: run.Pipeline}
	default:
		return ref, sdk.ToGRPC(sdk.Errorf(sdk.ErrInvalidArgument, "scope", "scope is run or pipeline, not %q", scope))
	}
	return ref, nil
}

func objectInfo(in *storage.ObjectInfo) *workerv1.ObjectInfo {
	if in == nil {
		return &workerv1.ObjectInfo{}
	}
	return &workerv1.ObjectInfo{Key: in.Ref.Key, Size: in.Size, Sha256: in.SHA256, ModifiedAt: timestamppb.New(in.ModifiedAt)}
}

func (w *workerService) PutObject(ctx context.Context, req *workerv1.PutObjectRequest) (*workerv1.ObjectInfo, error) {
	ref, err := w.objectRef(ctx, req.GetClaim(), req.GetScope(), req.GetKey())
	if err != nil {
		return nil, err
	}
	st, err := w.o.storage(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	info, err := st.Put(ctx, ref, bytes.NewReader(req.GetData()))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return objectInfo(info), nil
}

func (w *workerService) GetObject(ctx context.Context, req *workerv1.ObjectRequest) (*workerv1.GetObjectResponse, error) {
	ref, err := w.objectRef(ctx, req.GetClaim(), req.GetScope(), req.GetKey())
	if err != nil {
		return nil, err
	}
	st, err := w.o.storage(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	rc, info, err := st.Get(ctx, ref)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxRemoteObject+1))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if len(data) > maxRemoteObject {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrFailedPrecondition, "key", "%s is more than the %d bytes an object read through the server may have", ref.Key, maxRemoteObject))
	}
	return &workerv1.GetObjectResponse{Info: objectInfo(info), Data: data}, nil
}

func (w *workerService) ListObjects(ctx context.Context, req *workerv1.ListObjectsRequest) (*workerv1.ListObjectsResponse, error) {
	ref, err := w.objectRef(ctx, req.GetClaim(), req.GetScope(), "")
	if err != nil {
		return nil, err
	}
	st, err := w.o.storage(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	resp, err := st.List(ctx, &storage.ListRequest{Scope: ref.Scope, Prefix: req.GetPrefix(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	out := &workerv1.ListObjectsResponse{NextPageToken: resp.NextPageToken}
	for i := range resp.Items {
		out.Items = append(out.Items, objectInfo(&resp.Items[i]))
	}
	return out, nil
}

func (w *workerService) DeleteObject(ctx context.Context, req *workerv1.ObjectRequest) (*workerv1.DeleteObjectResponse, error) {
	ref, err := w.objectRef(ctx, req.GetClaim(), req.GetScope(), req.GetKey())
	if err != nil {
		return nil, err
	}
	st, err := w.o.storage(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if err := st.Delete(ctx, ref); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &workerv1.DeleteObjectResponse{}, nil
}

// Finish records how the claimed execution ended, as the embedded worker
// does, and acks or hands back its queue item.
func (w *workerService) Finish(ctx context.Context, req *workerv1.FinishRequest) (*workerv1.FinishResponse, error) {
	c := req.GetClaim()
	if _, err := w.check(ctx, c.GetWorker()); err != nil {
		return nil, err
	}
	o := w.o
	bg := context.WithoutCancel(ctx)
	it := jobItem{Namespace: c.GetNamespace(), Run: c.GetRun(), Job: c.GetJob(), Attempt: int(c.GetAttempt())}
	out := req.GetOutcome()
	var d disposition
	after := time.Second
	if out.GetInterrupted() != "" {
		d = o.interruptJob(bg, it, c.GetExecution(), out.GetInterrupted(), out.GetCounted())
		if !out.GetCounted() {
			after = 0 // the worker stopped: it runs again at once
		}
	} else {
		var outputs map[string]any
		if out.GetOutputs() != nil {
			outputs = out.GetOutputs().AsMap()
		}
		d = o.finishJob(bg, it, c.GetExecution(), jobOutcome{status: resource.Status(out.GetStatus()), reason: out.GetReason(),
			resume: int(out.GetResume()), outputs: outputs, noRetry: out.GetNoRetry(),
			ack: &pendingAck{req: database.AckRequest{ID: c.GetItemId(), LeaseToken: c.GetLeaseToken()}}}, false)
	}
	o.endRemote(c.GetExecution())
	item := &database.QueueItem{ID: c.GetItemId(), Queue: c.GetQueue(), LeaseToken: c.GetLeaseToken()}
	o.dispose(bg, item, d, after)
	if d == lost {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrConflict, "claim", "the outcome was not recorded: another execution holds job %s", c.GetJob()))
	}
	return &workerv1.FinishResponse{}, nil
}

// Workers lists the remote workers the servers heard of.
func (o *Orchestrator) Workers(ctx context.Context) ([]resource.Worker, error) {
	var out []resource.Worker
	token := ""
	for {
		page, next, err := list[resource.Worker](ctx, o.store, resource.KindWorker, "", nil, 500, token)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if token = next; token == "" {
			return out, nil
		}
	}
}

// DrainWorker sets whether a worker is drained: a drained worker finishes
// its running jobs and leases no more.
func (o *Orchestrator) DrainWorker(ctx context.Context, name string, drain bool) (*resource.Worker, error) {
	if err := workerName(name); err != nil {
		return nil, err
	}
	return mutate(ctx, o.store, resource.KindWorker, "", name, func(wk *resource.Worker) error {
		wk.Spec.Drain = drain
		return nil
	})
}

// RemoteLeases are the executions this server leased to remote workers
// that are still running, by worker, each with the time since its last
// renewal (the lease's age).
func (o *Orchestrator) RemoteLeases() map[string][]time.Duration {
	o.workers.mu.Lock()
	defer o.workers.mu.Unlock()
	out := map[string][]time.Duration{}
	for _, e := range o.workers.execs {
		out[e.worker] = append(out[e.worker], time.Since(e.renewed))
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}
