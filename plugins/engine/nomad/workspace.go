package nomad

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
)

// taskName is the name of the job's task group and of its one task.
const taskName = "job"

// workspace is one Palvella job's Nomad job and allocation.
type workspace struct {
	id     string
	jobID  string
	params params
	cl     *cluster
	alloc  *api.Allocation
	grace  time.Duration
	// workdir is the workspace as commands see it: a directory of the
	// allocation's shared alloc directory.
	workdir string
	// fsDir is the same directory as the allocation filesystem API names
	// it (relative to the allocation's root).
	fsDir string

	mu       sync.Mutex
	running  map[string]*run // by ExecID
	canceled map[string]bool // ExecIDs cancelled before they ran
	gone     bool
}

// Setup registers the job's Nomad job and waits until its allocation
// runs, then creates the workspace directory in it.
func (p *Plugin) Setup(ctx context.Context, req *engine.SetupRequest) (*engine.Workspace, error) {
	cfg := p.config()
	pr, diags := parseParams(req.Options, cfg.params, "", nil)
	for _, d := range diags {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, d.Field, "%s", d.Summary)
	}
	if pr.driver == driverDocker && pr.image == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "image", "the nomad engine's docker driver needs an image: give one in the pipeline (engine: {type: nomad, image: ...}), the named engine or the plugin configuration")
	}
	if err := p.lockOwner(cfg.stateDir); err != nil {
		return nil, fmt.Errorf("nomad engine: %w", err)
	}
	cl, err := p.clusterFor(ctx, pr)
	if err != nil {
		return nil, err
	}
	id := randomID(24)
	ws := &workspace{
		id: id, jobID: jobPrefix + id, params: pr, cl: cl, grace: cfg.grace,
		running: map[string]*run{}, canceled: map[string]bool{},
	}
	meta := map[string]string{
		metaEngine: TypeName, metaOwner: p.owner, metaHost: p.host, metaState: ownerlock.DirID(cfg.stateDir), metaWorkspace: id,
		metaNamespace: req.Namespace, metaPipeline: req.Pipeline, metaRun: req.Run, metaJob: req.Job,
	}
	job := jobSpec(ws.jobID, pr, meta, cfg.grace)
	resp, _, err := cl.c.Jobs().Register(job, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nomad engine: setup: %w", ctx.Err())
		}
		return nil, fmt.Errorf("nomad engine: register job %s: %w", ws.jobID, err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	alloc, err := p.waitRunning(sctx, cl, ws.jobID, pr.driver, resp.EvalID)
	if err == nil {
		ws.alloc = alloc
		err = ws.makeWorkdir(sctx)
	}
	if err != nil {
		p.purge(context.WithoutCancel(ctx), ws)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nomad engine: setup: %w", ctx.Err())
		}
		if sctx.Err() != nil {
			return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "start_timeout", "Nomad job %s did not start within %s", ws.jobID, cfg.startTimeout)
		}
		return nil, err
	}
	p.mu.Lock()
	p.workspaces[id] = ws
	p.mu.Unlock()
	return &engine.Workspace{ID: id, Workdir: ws.workdir}, nil
}

// jobSpec is the Nomad job of one Palvella job: a batch job whose one task
// only holds the allocation open (it sleeps) while the commands run in it
// through exec. It is never restarted or rescheduled: a task that dies
// ends the Palvella job rather than moving it to a fresh allocation
// without its workspace.
func jobSpec(jobID string, pr params, meta map[string]string, grace time.Duration) *api.Job {
	task := &api.Task{
		Name:   taskName,
		Driver: pr.driver,
		User:   pr.user,
		Resources: &api.Resources{
			CPU:      ptr(pr.cpuMHz),
			MemoryMB: ptr(pr.memoryMB),
		},
		KillTimeout: ptr(grace),
		LogConfig:   &api.LogConfig{MaxFiles: ptr(1), MaxFileSizeMB: ptr(1)},
	}
	// A sleep of 68 years: the task's one job is to keep the allocation
	// (and, with docker, the container) alive until Teardown.
	hold := []string{"2147483647"}
	switch pr.driver {
	case driverDocker:
		task.Config = map[string]any{"image": pr.image, "entrypoint": []string{"sleep"}, "args": hold}
		if pr.networkMode != "" {
			task.Config["network_mode"] = pr.networkMode
		}
	default:
		task.Config = map[string]any{"command": "sleep", "args": hold}
	}
	job := &api.Job{
		ID:   ptr(jobID),
		Name: ptr(jobID),
		Type: ptr("batch"),
		Meta: meta,
		TaskGroups: []*api.TaskGroup{{
			Name:             ptr(taskName),
			Count:            ptr(1),
			RestartPolicy:    &api.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")},
			ReschedulePolicy: &api.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)},
			EphemeralDisk:    &api.EphemeralDisk{SizeMB: ptr(300)},
			Tasks:            []*api.Task{task},
		}},
	}
	if len(pr.datacenters) > 0 {
		job.Datacenters = slices.Clone(pr.datacenters)
	}
	if pr.nodePool != "" {
		job.NodePool = ptr(pr.nodePool)
	}
	if pr.region != "" {
		job.Region = ptr(pr.region)
	}
	if pr.namespace != "" {
		job.Namespace = ptr(pr.namespace)
	}
	return job
}

func ptr[T any](v T) *T { return &v }

// waitRunning waits until the job's allocation runs its task, and says why
// when it cannot: no client can take it, or the task failed to start.
func (p *Plugin) waitRunning(ctx context.Context, cl *cluster, jobID, driver, evalID string) (*api.Allocation, error) {
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: time.Second}).WithContext(ctx)
		allocs, meta, err := cl.c.Jobs().Allocations(jobID, true, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("nomad engine: allocations of job %s: %w", jobID, err)
		}
		index = meta.LastIndex
		for _, a := range allocs {
			switch a.ClientStatus {
			case api.AllocClientStatusRunning:
				if ts := a.TaskStates[taskName]; ts != nil && ts.State == "running" {
					alloc, _, err := cl.c.Allocations().Info(a.ID, (&api.QueryOptions{}).WithContext(ctx))
					if err != nil {
						return nil, fmt.Errorf("nomad engine: allocation %s: %w", a.ID, err)
					}
					return alloc, nil
				}
			case api.AllocClientStatusFailed, api.AllocClientStatusComplete, api.AllocClientStatusLost:
				return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "driver", "Nomad job %s could not start its task (driver %s): %s", jobID, driver, taskEvents(a.TaskStates[taskName]))
			}
		}
		if len(allocs) == 0 && evalID != "" {
			ev, _, err := cl.c.Evaluations().Info(evalID, (&api.QueryOptions{}).WithContext(ctx))
			if err == nil && len(ev.FailedTGAllocs) > 0 {
				return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "driver", "Nomad cannot place job %s (driver %s): %s", jobID, driver, placementFailure(ev.FailedTGAllocs))
			}
		}
	}
}

// taskEvents is what a task's events say about its failure.
func taskEvents(ts *api.TaskState) string {
	if ts == nil {
		return "the task has no state"
	}
	var msgs []string
	for _, e := range ts.Events {
		if e.DisplayMessage != "" {
			msgs = append(msgs, e.Type+": "+e.DisplayMessage)
		}
	}
	return strings.Join(msgs, "; ")
}

// placementFailure says why the scheduler placed nothing.
func placementFailure(failed map[string]*api.AllocationMetric) string {
	var parts []string
	for _, m := range failed {
		if m == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d nodes evaluated", m.NodesEvaluated))
		for _, k := range slices.Sorted(maps.Keys(m.ConstraintFiltered)) {
			parts = append(parts, fmt.Sprintf("%d filtered by %s", m.ConstraintFiltered[k], k))
		}
		for _, k := range slices.Sorted(maps.Keys(m.DimensionExhausted)) {
			parts = append(parts, fmt.Sprintf("%d exhausted on %s", m.DimensionExhausted[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// makeWorkdir creates the workspace directory in the allocation's shared
// directory and learns its path as commands see it.
func (ws *workspace) makeWorkdir(ctx context.Context) error {
	var out, errOut bytes.Buffer
	code, err := ws.cl.c.Allocations().Exec(ctx, ws.alloc, taskName, false,
		[]string{"sh", "-c", `d="$NOMAD_ALLOC_DIR/palvella-ws-$1" && mkdir -p "$d" && cd "$d" && pwd -P`, "palvella", ws.id},
		strings.NewReader(""), &out, &errOut, nil, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("nomad engine: create the workspace in allocation %s: %w", ws.alloc.ID, err)
	}
	if code != 0 {
		return sdk.Errorf(sdk.ErrFailedPrecondition, "image", "nomad engine: the job's task cannot create its workspace (it needs sh, mkdir and env): exit %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	ws.workdir = strings.TrimSpace(out.String())
	ws.fsDir = "alloc/palvella-ws-" + ws.id
	return nil
}

// Teardown stops the workspace's running commands, removes the workspace
// directory, and stops and purges the Nomad job.
func (p *Plugin) Teardown(ctx context.Context, workspaceID string) error {
	p.mu.Lock()
	ws := p.workspaces[workspaceID]
	delete(p.workspaces, workspaceID)
	p.mu.Unlock()
	if ws == nil {
		return sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	ws.mu.Lock()
	ws.gone = true
	runs := make([]*run, 0, len(ws.running))
	for _, r := range ws.running {
		runs = append(runs, r)
	}
	ws.mu.Unlock()
	for _, r := range runs {
		r.stop(stoppedByTeardown)
	}
	var errs []error
	// The files first (stopAndPurge stops every process of the workspace's
	// commands).
	if code, err := ws.cl.c.Allocations().Exec(ctx, ws.alloc, taskName, false, []string{"rm", "-rf", "--", ws.workdir},
		strings.NewReader(""), discardWriter{}, discardWriter{}, nil, (&api.QueryOptions{}).WithContext(ctx)); err != nil || code != 0 {
		errs = append(errs, fmt.Errorf("remove the workspace %s: exit %d %v", ws.workdir, code, err))
	}
	if err := p.purge(ctx, ws); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nomad engine: teardown: %w", err)
	}
	return nil
}

// purge stops and purges the workspace's Nomad job.
func (p *Plugin) purge(ctx context.Context, ws *workspace) error {
	return p.stopAndPurge(ctx, ws.cl, ws.jobID, ws.id, ws.grace)
}

// stopAndPurge stops every process of the workspace's commands (Nomad
// does not: on a cgroups v1 host, raw_exec leaves exec'd processes outside
// the task's cgroup, and they outlive the allocation), stops the Nomad job,
// waits until its allocations have stopped, asks their clients to collect them (which removes the
// allocation's directory and, with docker, its container; a purged job's
// allocations can no longer be collected through the API), then purges
// the job.
func (p *Plugin) stopAndPurge(ctx context.Context, cl *cluster, jobID, workspaceID string, grace time.Duration) error {
	c := cl.c
	allocs, _, err := c.Jobs().Allocations(jobID, true, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		allocs = nil
	}
	var errs []error
	for _, stub := range allocs {
		if stub.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		if err := killIn(ctx, c, &api.Allocation{ID: stub.ID, NodeID: stub.NodeID}, "PALVELLA_EXEC="+workspaceID+"-", grace); err != nil {
			errs = append(errs, fmt.Errorf("allocation %s: %w", stub.ID, err))
		}
	}
	if _, _, err := c.Jobs().Deregister(jobID, false, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("stop job %s: %w", jobID, err)
	}
	deadline := time.Now().Add(grace + 30*time.Second)
	for _, stub := range allocs {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			a, _, err := c.Allocations().Info(stub.ID, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil || a.ClientStatus != api.AllocClientStatusRunning && a.ClientStatus != api.AllocClientStatusPending {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := c.Allocations().GC(&api.Allocation{ID: stub.ID, NodeID: stub.NodeID}, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
			p.log.Debug("collect a stopped allocation", "alloc", stub.ID, "error", err)
		}
	}
	if _, _, err := c.Jobs().Deregister(jobID, true, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		errs = append(errs, fmt.Errorf("purge job %s: %w", jobID, err))
	}
	return errors.Join(errs...)
}

func (p *Plugin) workspace(id string) (*workspace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.workspaces[id]
	if ws == nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", id)
	}
	return ws, nil
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
