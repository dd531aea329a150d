// Package orchestrator is the heart of the Palvella core: it applies
// pipelines, starts runs, evaluates each run's DAG, and executes jobs on
// engines through action and job plugins. It keeps its state as resources
// in the database plugin and its work in the database plugin's queue, so a
// server that is killed picks its runs up again when it restarts.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// Options configure an Orchestrator.
type Options struct {
	Plugins *pluginhost.Manager
	Logger  hclog.Logger
	// Database, Storage, Credential and Authentication name the plugins
	// chosen for those categories (the server's configuration): state and
	// the work queue, blobs, credentials, and per-run tokens. The first
	// two are required; without the others, jobs that need credentials or
	// a run token fail saying so.
	Database       string
	Storage        string
	Credential     string
	Authentication string
	// Engines are the named engines a pipeline's `engine: NAME` selects,
	// and DefaultEngine the one jobs run on when their pipeline names none.
	// Without any, an engine named local of type local is the default.
	Engines       []Engine
	DefaultEngine string
	// Workers is how many jobs this process runs at once (default 4); 0
	// workers with NoWorker set runs none (a server without an embedded
	// worker).
	Workers  int
	NoWorker bool
	// LeaseTTL is how long a worker holds a job without renewing it
	// (default 10s); a job whose worker died is run again after it.
	LeaseTTL time.Duration
	// DefaultRunTimeout applies to runs whose pipeline sets none (default
	// 24h).
	DefaultRunTimeout time.Duration
	// ShutdownGrace is how long running jobs may go on once Start's
	// context ends (default 30s). Jobs still running then are stopped and
	// handed back to the queue as interrupted attempts, to run again after
	// the restart; a negative value stops them at once.
	ShutdownGrace time.Duration
	// PluginWait bounds how long a job waits for a plugin it needs to start
	// or restart (default 60s); after it the job fails with the plugin's
	// name and why it could not start.
	PluginWait time.Duration
	// MaxInterruptions is how many times a job may be interrupted by a
	// crash (of the server, an engine or a plugin) and run again before it
	// fails (default 3). Stops of the server are not counted.
	MaxInterruptions int
	// MaxQueuedRuns, when positive, is how many runs may wait to start or
	// run at once; StartRun refuses more with ErrResourceExhausted (the API
	// answers 429 with Retry-After). Default 1000; negative for no limit.
	MaxQueuedRuns int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinInterval is the shortest interval trigger a pipeline may declare
	// (spec.DefaultMinInterval when zero).
	MinInterval time.Duration
	// Events and Metrics, when set, receive the run, job, action and
	// approval events and measurements (see WatchEvents).
	Events  *events.Bus
	Metrics *metrics.Metrics
	// Labels are the labels of the embedded worker, which leases the jobs
	// whose runs_on they satisfy (default DefaultLabels: os, arch and
	// platform).
	Labels map[string]string
	// MaxLogBytes bounds the stored log of one action (DefaultMaxLogBytes,
	// 100 MiB, when zero; negative keeps everything). Past it the action
	// goes on, and its log ends with a line saying how much was not stored.
	MaxLogBytes int64
}

// Orchestrator implements the API's backend and runs the scheduler and the
// embedded worker.
type Orchestrator struct {
	opts   Options
	log    hclog.Logger
	store  *store
	logs   logs
	holder string

	mu      sync.Mutex
	types   *typeIndex
	running map[string]context.CancelCauseFunc // in-flight jobs by run key
	execs   map[string]*execution              // executions served to action plugins
	plans   map[string]*plan                   // by namespace/pipeline.vN
	// admitting counts runs admitted but not yet counted as active.
	admitting int
	active    map[string]struct{}  // runs that have not ended, by namespace/name
	runs      map[string]*runState // state of the runs not ended, by namespace/name (runstate.go)

	queues queueSet // the selector queues (labels.go)
	// remote, in a remote worker, is the server its jobs report to
	// (remote_client.go); nil in a server.
	remote *remoteSite
	// workers is what a server keeps of the remote workers it serves
	// (remote_server.go).
	workers workerBook
	// leaseTurn rotates the queue a lease tries first (leaseAny).
	leaseTurn atomic.Uint64
	// jobEvents, once WatchEvents runs, takes the job changes the peer
	// watch reads: one watch of jobs serves both.
	jobEvents atomic.Pointer[func(database.Event)]

	wake chan struct{}
	wg   sync.WaitGroup
	// jobs is the context jobs run in: it outlives Start's context by the
	// shutdown grace, and its cause says why jobs were stopped.
	jobs     context.Context
	stopJobs context.CancelCauseFunc
	inflight sync.WaitGroup // the worker loops: drain waits for them
}

const jobQueue = "jobs"

// New returns an Orchestrator. Start starts its loops.
func New(opts Options) (*Orchestrator, error) {
	if opts.Plugins == nil {
		return nil, fmt.Errorf("orchestrator: no plugin manager")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Database == "" || opts.Storage == "" {
		return nil, fmt.Errorf("orchestrator: no database or storage plugin chosen")
	}
	if err := opts.setEngines(); err != nil {
		return nil, err
	}
	switch {
	case opts.NoWorker:
		// An API and scheduling server only (`--no-worker`): its worker
		// count, if one is given, is ignored.
		opts.Workers = 0
	case opts.Workers == 0:
		opts.Workers = 4
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.DefaultRunTimeout == 0 {
		opts.DefaultRunTimeout = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.PluginWait <= 0 {
		opts.PluginWait = 60 * time.Second
	}
	if opts.MaxInterruptions == 0 {
		opts.MaxInterruptions = 3
	}
	if opts.MaxQueuedRuns == 0 {
		opts.MaxQueuedRuns = 1000
	}
	if opts.Labels == nil {
		opts.Labels = DefaultLabels()
	}
	host, _ := os.Hostname()
	o := &Orchestrator{
		opts:    opts,
		log:     opts.Logger,
		holder:  fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()),
		running: map[string]context.CancelCauseFunc{},
		execs:   map[string]*execution{},
		plans:   map[string]*plan{},
		active:  map[string]struct{}{},
		runs:    map[string]*runState{},
		wake:    make(chan struct{}, 1),
	}
	o.store = newStore(o.database)
	o.jobs, o.stopJobs = context.WithCancelCause(context.Background())
	return o, nil
}

func (o *Orchestrator) now() time.Time { return o.opts.Now().UTC() }

func (o *Orchestrator) plugin(name string) (*pluginhost.Plugin, error) {
	return o.opts.Plugins.Plugin(name)
}

// client returns a client of a plugin, waiting at most PluginWait for it
// to start or restart, so that no job waits forever for a plugin that
// cannot start.
func client[T sdk.Plugin](ctx context.Context, o *Orchestrator, name string, c sdk.Category) (T, error) {
	var zero T
	wctx, cancel := context.WithTimeout(ctx, o.opts.PluginWait)
	defer cancel()
	var cl T
	var err error
	if l := leaseOf(ctx, name, c); l != nil {
		// The version the job holds (live.go).
		cl, err = pluginhost.LeaseClient[T](wctx, l, c)
	} else {
		p, perr := o.plugin(name)
		if perr != nil {
			return zero, perr
		}
		cl, err = pluginhost.Client[T](wctx, p, c)
	}
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return zero, o.notStarted(name, err)
	}
	return cl, err
}

// notStarted is the error of a plugin that did not start within
// PluginWait, saying why in one line, without the wait's own error.
func (o *Orchestrator) notStarted(name string, err error) error {
	why, _, _ := strings.Cut(err.Error(), "\n")
	why = strings.TrimSuffix(why, ": "+sdk.ErrPluginStopped.Error())
	return &notStarted{msg: fmt.Sprintf("plugin %q did not start within %s: %s", name, o.opts.PluginWait, why)}
}

// isNotStarted reports whether err is a plugin that did not start.
func isNotStarted(err error) bool {
	var ns *notStarted
	return errors.As(err, &ns)
}

// notStarted is a plugin that did not start within PluginWait. It is
// sdk.ErrPluginStopped to errors.Is, and says why in one line.
type notStarted struct{ msg string }

func (e *notStarted) Error() string        { return e.msg }
func (e *notStarted) Is(target error) bool { return target == sdk.ErrPluginStopped }

func (o *Orchestrator) database(ctx context.Context) (database.Database, error) {
	return client[database.Database](ctx, o, o.opts.Database, sdk.CategoryDatabase)
}

func (o *Orchestrator) storage(ctx context.Context) (storage.Storage, error) {
	if o.remote != nil {
		return o.remote.storage(), nil
	}
	return client[storage.Storage](ctx, o, o.opts.Storage, sdk.CategoryStorage)
}

// typeIndex maps action, job and engine types to the plugins providing
// them, from the plugins' manifests.
type typeIndex struct {
	actions map[string]typeRef // "run", "match", "slack/post"
	jobs    map[string]typeRef // "terraform/plan"
	engines map[string]string  // "local" -> "engine-local"
	// gen is the plugin manager's generation the index was built at.
	gen uint64
	// down are the plugins whose types are not known because they did not
	// start, with why (types.go).
	down map[string]error
}

type typeRef struct {
	plugin string
	name   string // the type's name as the plugin knows it
}

// shortName is a plugin's name without its category prefix:
// "job-terraform" -> "terraform".
func shortName(plugin string, c sdk.Category) string {
	return strings.TrimPrefix(plugin, c.String()+"-")
}

// indexTypes launches every plugin that provides actions, jobs or engines
// and records their types.
func (o *Orchestrator) indexTypes(ctx context.Context) (*typeIndex, error) {
	idx := &typeIndex{actions: map[string]typeRef{}, jobs: map[string]typeRef{}, engines: map[string]string{}, down: map[string]error{}}
	idx.gen = o.opts.Plugins.Generation() // before the list: a change during the build rebuilds it
	for _, st := range o.opts.Plugins.List() {
		interesting := false
		for _, c := range st.Categories {
			if c == sdk.CategoryAction || c == sdk.CategoryJob || c == sdk.CategoryEngine {
				interesting = true
			}
		}
		if !interesting {
			continue
		}
		p, err := o.plugin(st.Name)
		if err != nil {
			return nil, err
		}
		m, err := o.manifestWithin(ctx, p)
		if err != nil {
			o.log.Error("plugin unavailable; its types are not offered", "plugin", st.Name, "error", err)
			idx.down[st.Name] = err
			continue
		}
		for _, t := range m.Types {
			switch t.Category {
			case sdk.CategoryAction:
				ref := typeRef{plugin: st.Name, name: t.Name}
				// A type is written plugin/type, the plugin by its short
				// name or its full one (standard/run, action-standard/run).
				idx.actions[shortName(st.Name, sdk.CategoryAction)+"/"+t.Name] = ref
				idx.actions[st.Name+"/"+t.Name] = ref
				if _, taken := idx.actions[t.Name]; !taken && !strings.Contains(t.Name, "/") {
					idx.actions[t.Name] = ref
				}
			case sdk.CategoryJob:
				idx.jobs[shortName(st.Name, sdk.CategoryJob)+"/"+t.Name] = typeRef{plugin: st.Name, name: t.Name}
				idx.jobs[st.Name+"/"+t.Name] = typeRef{plugin: st.Name, name: t.Name}
			case sdk.CategoryEngine:
				idx.engines[t.Name] = st.Name
			}
		}
	}
	return idx, nil
}

// typeIndex returns the index, building it on first use and again once
// plugins were added, replaced or removed; a job keeps the index it
// started with (live.go).
func (o *Orchestrator) typeIdx(ctx context.Context) (*typeIndex, error) {
	return o.heldIndex(ctx, func() (*typeIndex, error) {
		o.mu.Lock()
		idx := o.types
		o.mu.Unlock()
		if idx != nil && idx.gen == o.opts.Plugins.Generation() {
			return idx, nil
		}
		idx, err := o.indexTypes(ctx)
		if err != nil {
			return nil, err
		}
		o.mu.Lock()
		o.types = idx
		o.mu.Unlock()
		return idx, nil
	})
}

func (o *Orchestrator) actionClient(ctx context.Context, ref typeRef) (action.Action, error) {
	return client[action.Action](ctx, o, ref.plugin, sdk.CategoryAction)
}

func (o *Orchestrator) jobClient(ctx context.Context, ref typeRef) (job.Job, error) {
	return client[job.Job](ctx, o, ref.plugin, sdk.CategoryJob)
}

func (o *Orchestrator) engineClient(ctx context.Context, typ string) (engine.Engine, error) {
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return nil, err
	}
	name, ok := idx.engines[typ]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "engine", "no engine plugin provides engine type %q (install one with `palvella plugin add engine-%s`)", typ, typ)
	}
	return client[engine.Engine](ctx, o, name, sdk.CategoryEngine)
}

// kick wakes the worker loops.
func (o *Orchestrator) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
	o.kickRemote()
}
