package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
	workerv1 "github.com/palvella/palvella/proto/palvella/worker/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A remote worker (`palvella worker`) is an Orchestrator too: it runs the
// jobs it leases with the same code as the server's embedded worker
// (runStarted, execute, runAction), on its own plugins, but every read or
// write of the run goes to the server over the worker protocol
// (proto/palvella/worker/v1) instead of the database: marking the job
// running is done by the server when it leases the job (startJob), and
// the job's expression context, environment (credentials), action
// records, outcome and storage objects (logs among them) are calls to
// the server carrying the worker's claim on the job. The server checks
// every claim against the job's live execution, so a worker that lost a
// job cannot write for it. See docs/design/remote-workers.md.

// WorkerProtocol is the version of the worker protocol this build speaks.
const WorkerProtocol = 1

// WorkerOptions configure a remote worker.
type WorkerOptions struct {
	// Conn is the connection to the server's worker service.
	Conn grpc.ClientConnInterface
	// Name is the worker's name (unique among the workers of a server).
	Name string
	// Labels are what the worker offers to runs_on, os, arch and platform
	// among them.
	Labels map[string]string
	// Version is the worker's version, shown by `palvella worker list`.
	Version string
	// Heartbeat is how often the worker says it is alive (default 5s).
	Heartbeat time.Duration
}

// NewWorker returns a remote worker: an Orchestrator that leases jobs
// through a server and runs them on the plugins of opts.Plugins (action,
// job and engine plugins; no database, storage or credential plugin).
// StartWorker starts it.
func NewWorker(opts Options, w WorkerOptions) (*Orchestrator, error) {
	if w.Conn == nil || w.Name == "" {
		return nil, fmt.Errorf("orchestrator: a worker needs a connection to a server and a name")
	}
	// New requires the server's plugins; a worker has none of them.
	opts.Database, opts.Storage, opts.Credential, opts.Authentication = "-", "-", "", ""
	opts.NoWorker = false
	o, err := New(opts)
	if err != nil {
		return nil, err
	}
	if w.Heartbeat <= 0 {
		w.Heartbeat = 5 * time.Second
	}
	labels := DefaultLabels()
	maps.Copy(labels, w.Labels)
	o.remote = &remoteSite{o: o, c: workerv1.NewWorkerServiceClient(w.Conn), name: w.Name, labels: labels,
		version: w.Version, every: w.Heartbeat, started: time.Now(), jobs: map[string]*remoteJob{}, beat: make(chan struct{}, 1)}
	return o, nil
}

// Labels are the labels a remote worker offers.
func (o *Orchestrator) Labels() map[string]string {
	if o.remote == nil {
		return maps.Clone(o.opts.Labels)
	}
	return maps.Clone(o.remote.labels)
}

// StartWorker starts a remote worker's loops: a heartbeat, and Workers
// leasing loops. It returns once the first heartbeat reached the server
// (or fails with why it could not); Wait waits for the loops to end once
// ctx ends, after the running jobs finished or, past the shutdown grace,
// were handed back.
func (o *Orchestrator) StartWorker(ctx context.Context) error {
	r := o.remote
	if r == nil {
		return fmt.Errorf("orchestrator: StartWorker on a server")
	}
	if _, err := o.typeIdx(ctx); err != nil {
		return fmt.Errorf("index plugin types: %w", err)
	}
	if err := r.heartbeat(ctx); err != nil {
		return err
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// A last heartbeat, so that the servers list the worker
				// without its jobs once it stops.
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				o.inflight.Wait()
				_ = r.heartbeat(hctx)
				cancel()
				return
			case <-t.C:
			case <-r.beat:
			}
			if err := r.heartbeat(ctx); err != nil && ctx.Err() == nil {
				o.log.Warn("heartbeat to the server", "error", err)
			}
		}
	}()
	for i := 0; i < o.opts.Workers; i++ {
		o.wg.Add(1)
		o.inflight.Add(1)
		go func() {
			defer o.wg.Done()
			defer o.inflight.Done()
			o.remoteLoop(ctx)
		}()
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		<-ctx.Done()
		o.drain()
	}()
	return nil
}

// remoteLoop leases jobs through the server and runs them until ctx ends.
func (o *Orchestrator) remoteLoop(ctx context.Context) {
	r := o.remote
	for ctx.Err() == nil {
		if r.drained.Load() {
			sleep(ctx, time.Second) // the heartbeat says when it is not
			continue
		}
		s, err := r.lease(ctx)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Warn("lease a job from the server", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if s != nil {
			o.remoteWork(ctx, s)
		}
	}
}

// remoteWork runs one job leased through the server, renewing its lease
// through the server, as work does for the embedded worker: a lease that
// cannot be renewed for half its TTL (the server is unreachable) stops
// the job before the lease can expire and another worker take it.
func (o *Orchestrator) remoteWork(ctx context.Context, s *startedJob) {
	r := o.remote
	key := jobKey(s.it.Namespace, s.it.Run, s.it.Job)
	rj := r.job(key)
	// The servers hear of the job's start and end at once, not at the
	// next heartbeat (worker list, drain).
	r.soon()
	defer r.soon()
	defer r.forget(key)
	jobCtx, cancel := context.WithCancelCause(o.jobs)
	defer cancel(nil)
	o.mu.Lock()
	o.running[key] = cancel
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.running, key)
		o.mu.Unlock()
	}()
	bg := context.WithoutCancel(ctx)
	ttl := rj.ttl
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(ttl / 4)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(bg, ttl/4)
			_, err := r.c.Renew(rctx, &workerv1.RenewRequest{Claim: rj.claim})
			rcancel()
			err = sdk.FromGRPC(err)
			switch {
			case err == nil:
				lastOK = time.Now()
			case errors.Is(err, sdk.ErrConflict) || errors.Is(err, sdk.ErrNotFound):
				o.log.Error("job lease taken over; stopping the job", "job", s.it.id(), "error", err)
				cancel(errLeaseLost)
				return
			case time.Since(lastOK) >= ttl/2:
				o.log.Error("job lease could not be renewed through the server; stopping the job before it expires", "job", s.it.id(), "error", err)
				cancel(errLeaseLost)
				return
			default:
				o.log.Warn("renew job lease", "job", s.it.id(), "error", err)
			}
		}
	}()
	o.log.Info("job started", "run", s.it.Run, "job", s.it.Job, "namespace", s.it.Namespace, "execution", s.exec)
	d := o.runStarted(jobCtx, s)
	cancel(nil)
	<-renewDone
	o.log.Info("job ended", "run", s.it.Run, "job", s.it.Job, "lost", d == lost)
}

// remoteSite is the server a remote worker's jobs report to.
type remoteSite struct {
	o       *Orchestrator
	c       workerv1.WorkerServiceClient
	name    string
	labels  map[string]string
	version string
	every   time.Duration
	started time.Time
	drained atomic.Bool
	beat    chan struct{} // a heartbeat now (soon)

	mu   sync.Mutex
	jobs map[string]*remoteJob // by namespace/run/job
}

// remoteJob is a job this worker runs: its claim and what the server
// resolved for it.
type remoteJob struct {
	claim    *workerv1.Claim
	ttl      time.Duration
	pipeline string
	engine   *workerv1.Engine
	ending   atomic.Bool // its outcome is being reported: its claim is about to end
}

// soon asks for a heartbeat now.
func (r *remoteSite) soon() {
	select {
	case r.beat <- struct{}{}:
	default:
	}
}

func (r *remoteSite) job(key string) *remoteJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[key]
}

func (r *remoteSite) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, key)
}

func (r *remoteSite) heartbeat(ctx context.Context) error {
	var jobs []string
	r.mu.Lock()
	for k := range r.jobs {
		jobs = append(jobs, k)
	}
	r.mu.Unlock()
	slices.Sort(jobs)
	resp, err := r.c.Heartbeat(ctx, &workerv1.HeartbeatRequest{Worker: r.name, Labels: r.labels, Version: r.version,
		Capacity: int32(r.o.opts.Workers), Jobs: jobs, StartedAt: timestamppb.New(r.started), Protocol: WorkerProtocol})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", sdk.FromGRPC(err))
	}
	if was := r.drained.Swap(resp.GetDrain()); was != resp.GetDrain() {
		if resp.GetDrain() {
			r.o.log.Info("drained: finishing the running jobs and leasing no more", "jobs", len(jobs))
		} else {
			r.o.log.Info("no longer drained: leasing jobs again")
		}
	}
	return nil
}

// lease asks the server for a job, waiting up to leaseWait for one.
func (r *remoteSite) lease(ctx context.Context) (*startedJob, error) {
	lctx, cancel := context.WithTimeout(ctx, leaseWait+10*time.Second)
	defer cancel()
	resp, err := r.c.Lease(lctx, &workerv1.LeaseRequest{Worker: r.name, Labels: r.labels, Wait: durationpb.New(leaseWait)})
	if err != nil {
		return nil, sdk.FromGRPC(err)
	}
	if resp.GetDrain() {
		r.drained.Store(true)
	}
	a := resp.GetAssignment()
	if a == nil {
		return nil, nil
	}
	s, err := startedFromProto(a)
	if err != nil {
		// Not ours to run: the lease lapses and another worker (or a
		// newer one) takes the job.
		return nil, fmt.Errorf("the server's assignment: %w", err)
	}
	key := jobKey(s.it.Namespace, s.it.Run, s.it.Job)
	r.mu.Lock()
	r.jobs[key] = &remoteJob{claim: a.GetClaim(), ttl: a.GetLeaseTtl().AsDuration(), pipeline: a.GetPipeline(), engine: a.GetEngine()}
	r.mu.Unlock()
	return s, nil
}

// leaseWait is how long a Lease call waits at the server for a job.
const leaseWait = 10 * time.Second

func (r *remoteSite) claim(ns, run, job string) (*workerv1.Claim, error) {
	rj := r.job(jobKey(ns, run, job))
	if rj == nil {
		return nil, fmt.Errorf("%w: job %s/%s/%s is not one this worker runs", errFenced, ns, run, job)
	}
	return rj.claim, nil
}

// fenceErr maps the server's answer that the claim is not the job's live
// execution to errFenced.
func fenceErr(err error) error {
	err = sdk.FromGRPC(err)
	if errors.Is(err, sdk.ErrConflict) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	return err
}

func (r *remoteSite) engine(ns, run, job string) (string, map[string]any, bool, func([]planAction) []planAction) {
	rj := r.job(jobKey(ns, run, job))
	if rj == nil || rj.engine == nil {
		return "", nil, false, func(a []planAction) []planAction { return a }
	}
	e := rj.engine
	setup, teardown := actionsFromProto(e.GetSetup()), actionsFromProto(e.GetTeardown())
	return e.GetType(), structMap(e.GetOptions()), e.GetNamed(), func(a []planAction) []planAction {
		if len(setup) == 0 && len(teardown) == 0 {
			return a
		}
		out := make([]planAction, 0, len(setup)+len(a)+len(teardown))
		return append(append(append(out, setup...), a...), teardown...)
	}
}

func (r *remoteSite) exprContext(ctx context.Context, run *resource.Run, job string, refs *jobRefs) map[string]any {
	c, err := r.claim(run.Namespace, run.Name, job)
	if err != nil {
		return map[string]any{}
	}
	req := &workerv1.ExprContextRequest{Claim: c, AllJobs: refs == nil || refs.all}
	if refs != nil {
		req.Jobs = slices.Sorted(maps.Keys(refs.names))
	}
	resp, err := r.c.ExprContext(ctx, req)
	if err != nil {
		r.o.log.Warn("read the job's expression context from the server", "run", run.Name, "job", job, "error", err)
		return map[string]any{}
	}
	return structMap(resp.GetContext())
}

func (r *remoteSite) jobEnv(ctx context.Context, run *resource.Run, job, workdir string) (map[string]string, []string, error) {
	c, err := r.claim(run.Namespace, run.Name, job)
	if err != nil {
		return nil, nil, err
	}
	resp, err := r.c.JobEnv(ctx, &workerv1.JobEnvRequest{Claim: c, Workdir: workdir})
	if err != nil {
		return nil, nil, fenceErr(err)
	}
	env := resp.GetEnv()
	if env == nil {
		env = map[string]string{}
	}
	return env, resp.GetSecrets(), nil
}

func (r *remoteSite) recordActions(ctx context.Context, ns, run, job string, actions []planAction, resume int) error {
	c, err := r.claim(ns, run, job)
	if err != nil {
		return err
	}
	pa, err := actionsToProto(actions)
	if err != nil {
		return err
	}
	_, err = r.c.RecordActions(ctx, &workerv1.RecordActionsRequest{Claim: c, Actions: pa, Resume: int32(resume)})
	return fenceErr(err)
}

func (r *remoteSite) recordAction(ctx context.Context, ns, run, job, action string, st resource.Status, msg string, outputs map[string]any) error {
	c, err := r.claim(ns, run, job)
	if err != nil {
		return err
	}
	out, err := toStruct(outputs)
	if err != nil {
		return err
	}
	_, err = r.c.RecordAction(ctx, &workerv1.RecordActionRequest{Claim: c, Action: action, Status: string(st), Message: msg, Outputs: out})
	err = fenceErr(err)
	if errors.Is(err, sdk.ErrFailedPrecondition) {
		return fmt.Errorf("%w: %w", errStale, err) // the job ended meanwhile
	}
	return err
}

// finish reports how the execution ended; the server records it, and
// acks or hands back the job's queue item.
func (r *remoteSite) finish(ctx context.Context, s *startedJob, out jobOutcome) disposition {
	outputs, err := toStruct(out.outputs)
	if err != nil {
		outputs = nil
		out.status, out.reason = resource.StatusFailure, "outputs: "+err.Error()
	}
	return r.report(ctx, s, &workerv1.Outcome{Status: string(out.status), Reason: out.reason, Resume: int32(out.resume), Outputs: outputs, NoRetry: out.noRetry})
}

// interrupt reports an execution stopped from outside: the job runs
// again without using a retry.
func (r *remoteSite) interrupt(ctx context.Context, s *startedJob, why string, counted bool) disposition {
	return r.report(ctx, s, &workerv1.Outcome{Interrupted: why, Counted: counted})
}

func (r *remoteSite) report(ctx context.Context, s *startedJob, out *workerv1.Outcome) disposition {
	c, err := r.claim(s.it.Namespace, s.it.Run, s.it.Job)
	if err != nil {
		return lost
	}
	if rj := r.job(jobKey(s.it.Namespace, s.it.Run, s.it.Job)); rj != nil {
		rj.ending.Store(true) // storage calls of the run's other jobs use their own claims from now on
	}
	// The server may be restarting: try for a while, within the lease.
	deadline := time.Now().Add(r.job(jobKey(s.it.Namespace, s.it.Run, s.it.Job)).ttl / 2)
	for {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = r.c.Finish(fctx, &workerv1.FinishRequest{Claim: c, Outcome: out})
		cancel()
		err = fenceErr(err)
		if err == nil {
			return done
		}
		if errors.Is(err, errFenced) || errors.Is(err, sdk.ErrNotFound) || time.Now().After(deadline) {
			r.o.log.Warn("the server did not record the job's outcome; its lease decides who runs it next", "run", s.it.Run, "job", s.it.Job, "error", err)
			return lost
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// storage is the run storage of this worker's jobs, through the server.
func (r *remoteSite) storage() storage.Storage { return remoteStorage{r} }

// remoteStorage reaches run and pipeline storage through the server,
// each call with the claim of a job of this worker in that run (or
// pipeline), which the server checks.
type remoteStorage struct{ r *remoteSite }

var _ storage.Storage = remoteStorage{}

// claimsFor returns the claims of this worker's jobs in a scope, the
// ones whose outcome is not being reported first. Any of them lets the
// server serve the scope; one whose job has just ended is refused, so
// the calls below try the next.
func (s remoteStorage) claimsFor(sc storage.Scope) ([]*workerv1.Claim, string, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	var live, ending []*workerv1.Claim
	scope := ""
	for _, rj := range s.r.jobs {
		c := rj.claim
		if c.GetNamespace() != sc.Namespace {
			continue
		}
		switch {
		case sc.Kind == storage.ScopeRun && c.GetRun() == sc.Run:
			scope = "run"
		case sc.Kind == storage.ScopePipeline && rj.pipeline == sc.Pipeline:
			scope = "pipeline"
		default:
			continue
		}
		if rj.ending.Load() {
			ending = append(ending, c)
		} else {
			live = append(live, c)
		}
	}
	if len(live)+len(ending) == 0 {
		return nil, "", sdk.Errorf(sdk.ErrPermissionDenied, "scope", "no job of this worker is in %s scope %s/%s", sc.Kind, sc.Namespace, sc.Pipeline)
	}
	return append(live, ending...), scope, nil
}

// withClaim calls fn with each claim of the scope until one is not
// refused as ended.
func (s remoteStorage) withClaim(sc storage.Scope, fn func(c *workerv1.Claim, scope string) error) error {
	cs, scope, err := s.claimsFor(sc)
	if err != nil {
		return err
	}
	for _, c := range cs {
		err = sdk.FromGRPC(fn(c, scope))
		if !errors.Is(err, sdk.ErrConflict) {
			return err
		}
	}
	return err
}

func (s remoteStorage) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "worker-storage"}, nil
}

func (s remoteStorage) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (s remoteStorage) Put(ctx context.Context, ref storage.ObjectRef, rd io.Reader) (*storage.ObjectInfo, error) {
	data, err := io.ReadAll(io.LimitReader(rd, maxRemoteObject+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRemoteObject {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data", "an object put through the server is at most %d bytes", maxRemoteObject)
	}
	var info *workerv1.ObjectInfo
	err = s.withClaim(ref.Scope, func(c *workerv1.Claim, scope string) (err error) {
		info, err = s.r.c.PutObject(ctx, &workerv1.PutObjectRequest{Claim: c, Scope: scope, Key: ref.Key, Data: data})
		return err
	})
	if err != nil {
		return nil, err
	}
	return infoFromProto(ref.Scope, info), nil
}

func (s remoteStorage) Get(ctx context.Context, ref storage.ObjectRef) (io.ReadCloser, *storage.ObjectInfo, error) {
	var resp *workerv1.GetObjectResponse
	err := s.withClaim(ref.Scope, func(c *workerv1.Claim, scope string) (err error) {
		resp, err = s.r.c.GetObject(ctx, &workerv1.ObjectRequest{Claim: c, Scope: scope, Key: ref.Key})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return io.NopCloser(bytes.NewReader(resp.GetData())), infoFromProto(ref.Scope, resp.GetInfo()), nil
}

func (s remoteStorage) Stat(ctx context.Context, ref storage.ObjectRef) (*storage.ObjectInfo, error) {
	rc, info, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	rc.Close()
	return info, nil
}

func (s remoteStorage) List(ctx context.Context, req *storage.ListRequest) (*storage.ListResponse, error) {
	var resp *workerv1.ListObjectsResponse
	err := s.withClaim(req.Scope, func(c *workerv1.Claim, scope string) (err error) {
		resp, err = s.r.c.ListObjects(ctx, &workerv1.ListObjectsRequest{Claim: c, Scope: scope, Prefix: req.Prefix, PageSize: int32(req.PageSize), PageToken: req.PageToken})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &storage.ListResponse{NextPageToken: resp.GetNextPageToken()}
	for _, it := range resp.GetItems() {
		out.Items = append(out.Items, *infoFromProto(req.Scope, it))
	}
	return out, nil
}

func (s remoteStorage) Delete(ctx context.Context, ref storage.ObjectRef) error {
	return s.withClaim(ref.Scope, func(c *workerv1.Claim, scope string) error {
		_, err := s.r.c.DeleteObject(ctx, &workerv1.ObjectRequest{Claim: c, Scope: scope, Key: ref.Key})
		return err
	})
}

func (s remoteStorage) Prune(context.Context, storage.ScopeKind, time.Time) (int64, error) {
	return 0, sdk.Errorf(sdk.ErrUnimplemented, "", "a worker prunes nothing")
}

// maxRemoteObject bounds one object moved through the worker protocol:
// log chunks are at most 1 MiB and stored files 3 MiB.
const maxRemoteObject = 4 << 20

func infoFromProto(sc storage.Scope, in *workerv1.ObjectInfo) *storage.ObjectInfo {
	if in == nil {
		return &storage.ObjectInfo{Ref: storage.ObjectRef{Scope: sc}}
	}
	return &storage.ObjectInfo{Ref: storage.ObjectRef{Scope: sc, Key: in.GetKey()}, Size: in.GetSize(), SHA256: in.GetSha256(), ModifiedAt: in.GetModifiedAt().AsTime()}
}

// startedFromProto is the job an assignment hands the worker.
func startedFromProto(a *workerv1.Assignment) (*startedJob, error) {
	c, j := a.GetClaim(), a.GetJob()
	if c == nil || j == nil || c.GetExecution() == "" || a.GetLeaseTtl().AsDuration() <= 0 {
		return nil, fmt.Errorf("incomplete assignment")
	}
	it := jobItem{Namespace: c.GetNamespace(), Run: c.GetRun(), Job: c.GetJob(), Attempt: int(c.GetAttempt())}
	pj := &planJob{Name: j.GetName(), Params: structMap(j.GetParams()), Uses: j.GetUses(), With: structMap(j.GetWith()),
		Actions: actionsFromProto(j.GetActions()), Get: entriesFromProto(j.GetGet()), Put: entriesFromProto(j.GetPut())}
	if len(j.GetParams().GetFields()) == 0 {
		pj.Params = nil
	}
	if len(j.GetWith().GetFields()) == 0 {
		pj.With = nil
	}
	run := &resource.Run{Meta: resource.Meta{Kind: resource.KindRun, Namespace: c.GetNamespace(), Name: c.GetRun()},
		Pipeline: a.GetPipeline(), Number: a.GetRunNumber()}
	js := resource.JobStatus{Name: j.GetName(), Status: resource.StatusRunning, Attempt: int(c.GetAttempt()), Execution: c.GetExecution()}
	for _, as := range a.GetPrevious() {
		js.Actions = append(js.Actions, resource.ActionStatus{Name: as.GetName(), Status: resource.Status(as.GetStatus()), Outputs: structMap(as.GetOutputs())})
	}
	p := &plan{Namespace: c.GetNamespace(), Name: a.GetPipeline(), Jobs: []planJob{*pj}}
	return &startedJob{it: it, exec: c.GetExecution(), run: run, js: js, p: p, pj: &p.Jobs[0], resume: int(a.GetResume()),
		timeout: a.GetTimeout().AsDuration(), timeoutReason: a.GetTimeoutReason()}, nil
}

func actionsFromProto(in []*workerv1.Action) []planAction {
	var out []planAction
	for _, a := range in {
		pa := planAction{Name: a.GetName(), Type: a.GetType(), If: a.GetCondition(), Params: structMap(a.GetParams()),
			OnSuccess: a.GetOnSuccess(), OnFailure: a.GetOnFailure(), Timeout: a.GetTimeout().AsDuration(), Phase: a.GetPhase()}
		out = append(out, pa)
	}
	return out
}

func actionsToProto(in []planAction) ([]*workerv1.Action, error) {
	var out []*workerv1.Action
	for _, a := range in {
		params, err := toStruct(a.Params)
		if err != nil {
			return nil, fmt.Errorf("action %s: params: %w", a.Name, err)
		}
		pa := &workerv1.Action{Name: a.Name, Type: a.Type, Condition: a.If, Params: params, OnSuccess: a.OnSuccess, OnFailure: a.OnFailure, Phase: a.Phase}
		if a.Timeout > 0 {
			pa.Timeout = durationpb.New(a.Timeout)
		}
		out = append(out, pa)
	}
	return out, nil
}

func entriesFromProto(in []*workerv1.StorageEntry) []storageEntry {
	var out []storageEntry
	for _, e := range in {
		out = append(out, storageEntry{Path: e.GetPath(), Scope: e.GetScope(), Key: e.GetKey()})
	}
	return out
}

func entriesToProto(in []storageEntry) []*workerv1.StorageEntry {
	var out []*workerv1.StorageEntry
	for _, e := range in {
		out = append(out, &workerv1.StorageEntry{Path: e.Path, Scope: e.Scope, Key: e.Key})
	}
	return out
}

// workerName checks a worker's name: what `palvella worker list` shows
// and drain names.
func workerName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, "/ \t\r\n") {
		return sdk.Errorf(sdk.ErrInvalidArgument, "worker", "a worker's name is 1 to 128 characters without spaces or slashes, not %q", name)
	}
	return nil
}
