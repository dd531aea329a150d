package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// load parses and validates a pipeline file against the types this
// server's plugins provide.
func (o *Orchestrator) load(ctx context.Context, filename string, source []byte) (*spec.Pipeline, error) {
	if _, err := o.typeIdx(ctx); err != nil {
		return nil, err
	}
	// Each action's params and each job's with are checked against the
	// schema of its type, which its plugin describes (types.go).
	p, err := spec.Load(filename, source, spec.Options{
		ActionType:  o.specTypes(ctx, sdk.CategoryAction),
		JobType:     o.specTypes(ctx, sdk.CategoryJob),
		MinInterval: o.opts.MinInterval,
	})
	if err != nil {
		return nil, validationError(err)
	}
	if err := checkSpecSize(filename, p); err != nil {
		return nil, err
	}
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return nil, err
	}
	if err := o.checkEngines(ctx, p, idx); err != nil {
		return nil, validationError(err)
	}
	return p, nil
}

// checkSpecSize refuses a pipeline with more jobs, or a job with more
// actions, than a run may have (see limits.go).
func checkSpecSize(filename string, p *spec.Pipeline) error {
	ve := &wire.ValidationError{}
	if n := len(p.Spec.Jobs); n > MaxJobsPerPipeline {
		ve.Problems = append(ve.Problems, wire.Problem{File: filename, Field: "spec.jobs",
			Message: fmt.Sprintf("the pipeline has %d jobs, more than the %d a pipeline may have", n, MaxJobsPerPipeline)})
	}
	for i, j := range p.Spec.Jobs {
		if n := len(j.Actions); n > MaxActionsPerJob {
			ve.Problems = append(ve.Problems, wire.Problem{File: filename, Field: fmt.Sprintf("spec.jobs[%d].actions", i),
				Message: fmt.Sprintf("job %s has %d actions, more than the %d a job may have", j.Name, n, MaxActionsPerJob)})
		}
	}
	if len(ve.Problems) > 0 {
		return ve
	}
	return nil
}

// validationError turns the spec's errors into the API's.
func validationError(err error) error {
	var list spec.Errors
	if !errors.As(err, &list) {
		return err
	}
	ve := &wire.ValidationError{}
	for _, e := range list {
		ve.Problems = append(ve.Problems, wire.Problem{File: e.File, Line: e.Line, Field: e.Path, Message: e.Message})
	}
	return ve
}

// ValidatePipeline checks a pipeline file without applying it.
func (o *Orchestrator) ValidatePipeline(ctx context.Context, filename string, source []byte) error {
	_, err := o.load(ctx, filename, source)
	return err
}

// ApplyPipeline creates a pipeline, or a new version of it when its content
// changed; the same content applied again changes nothing.
func (o *Orchestrator) ApplyPipeline(ctx context.Context, req wire.ApplyRequest) (*wire.ApplyResult, error) {
	p, err := o.load(ctx, req.Filename, req.Source)
	if err != nil {
		return nil, err
	}
	if req.Namespace != "" {
		p.Metadata.Namespace = req.Namespace
	}
	ns, name := p.Metadata.Namespace, p.Metadata.Name
	if ns == "" {
		ns = spec.DefaultNamespace
		p.Metadata.Namespace = ns
	}
	canon, err := p.CanonicalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode pipeline: %w", err)
	}
	hash := p.Hash()
	version := func(n int) *resource.PipelineVersion {
		return &resource.PipelineVersion{
			Meta:     resource.Meta{Kind: resource.KindPipelineVersion, Namespace: ns, Name: versionName(name, n), Labels: map[string]string{"pipeline": name}},
			Pipeline: name, Version: n, Hash: hash, Spec: canon, Source: string(req.Source),
		}
	}
	for attempt := 0; attempt < 10; attempt++ {
		cur := &resource.Pipeline{}
		err := o.store.get(ctx, resource.KindPipeline, ns, name, cur)
		switch {
		case errors.Is(err, sdk.ErrNotFound):
			// The version first, so a pipeline never points at a missing one.
			err := o.store.create(ctx, version(1))
			if errors.Is(err, sdk.ErrAlreadyExists) {
				// Left by a pipeline of this name that was deleted, or by
				// a concurrent apply: a leftover is purged so the new
				// pipeline's runs execute its own content.
				old := &resource.PipelineVersion{}
				if gerr := o.store.get(ctx, resource.KindPipelineVersion, ns, versionName(name, 1), old); gerr == nil && old.Hash != hash {
					if gerr := o.store.get(ctx, resource.KindPipeline, ns, name, &resource.Pipeline{}); gerr == nil {
						continue // applied concurrently: read it again
					}
					if perr := o.purgePipeline(ctx, ns, name); perr != nil {
						return nil, fmt.Errorf("remove what a deleted pipeline %s/%s left: %w", ns, name, perr)
					}
					continue
				}
			} else if err != nil {
				return nil, err
			}
			pl := &resource.Pipeline{Meta: resource.Meta{Kind: resource.KindPipeline, Namespace: ns, Name: name, Labels: p.Metadata.Labels},
				Description: p.Metadata.Description, Version: 1, Hash: hash, Spec: canon}
			if err := o.store.create(ctx, pl); errors.Is(err, sdk.ErrAlreadyExists) {
				continue // applied concurrently: read it again
			} else if err != nil {
				return nil, err
			}
			o.log.Info("pipeline created", "namespace", ns, "pipeline", name)
			return &wire.ApplyResult{Pipeline: pl, Outcome: "created"}, nil
		case err != nil:
			return nil, err
		case cur.Hash == hash:
			return &wire.ApplyResult{Pipeline: cur, Outcome: "unchanged"}, nil
		}
		next := cur.Version + 1
		if err := o.store.create(ctx, version(next)); err != nil && !errors.Is(err, sdk.ErrAlreadyExists) {
			return nil, err
		}
		cur.Version, cur.Hash, cur.Spec, cur.Description, cur.Labels = next, hash, canon, p.Metadata.Description, p.Metadata.Labels
		if err := o.store.update(ctx, cur); errors.Is(err, sdk.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		o.log.Info("pipeline updated", "namespace", ns, "pipeline", name, "version", next)
		return &wire.ApplyResult{Pipeline: cur, Outcome: "updated"}, nil
	}
	return nil, sdk.Errorf(sdk.ErrConflict, "", "pipeline %s/%s is being changed by someone else; try again", ns, name)
}

// ListPipelines lists a namespace's pipelines.
func (o *Orchestrator) ListPipelines(ctx context.Context, ns string, page wire.PageRequest) (*wire.Page[resource.Pipeline], error) {
	items, next, err := list[resource.Pipeline](ctx, o.store, resource.KindPipeline, ns, nil, page.Size, page.Token)
	if err != nil {
		return nil, err
	}
	return &wire.Page[resource.Pipeline]{Items: items, NextPageToken: next}, nil
}

// GetPipeline returns a pipeline.
func (o *Orchestrator) GetPipeline(ctx context.Context, ns, name string) (*resource.Pipeline, error) {
	pl := &resource.Pipeline{}
	if err := o.store.get(ctx, resource.KindPipeline, ns, name, pl); err != nil {
		return nil, fmt.Errorf("pipeline %s/%s: %w", ns, name, err)
	}
	return pl, nil
}

// ListPipelineVersions lists a pipeline's versions, oldest first.
func (o *Orchestrator) ListPipelineVersions(ctx context.Context, ns, name string) ([]resource.PipelineVersion, error) {
	if _, err := o.GetPipeline(ctx, ns, name); err != nil {
		return nil, err
	}
	var out []resource.PipelineVersion
	token := ""
	for {
		items, next, err := list[resource.PipelineVersion](ctx, o.store, resource.KindPipelineVersion, ns, map[string]string{"pipeline": name}, 200, token)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			break
		}
		token = next
	}
	sortVersions(out)
	return out, nil
}

func sortVersions(vs []resource.PipelineVersion) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].Version < vs[j-1].Version; j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

// DeletePipeline deletes a pipeline with its versions, its finished runs
// and what they stored (logs, artifacts, pipeline-scoped entries). A
// pipeline with unfinished runs is not deleted. A pipeline applied later
// under the same name starts afresh at version 1 and run 1.
func (o *Orchestrator) DeletePipeline(ctx context.Context, ns, name string) error {
	if _, err := o.GetPipeline(ctx, ns, name); err != nil {
		return err
	}
	active, _, err := list[resource.Run](ctx, o.store, resource.KindRun, ns, map[string]string{"pipeline": name, "active": "true"}, 1, "")
	if err != nil {
		return err
	}
	if len(active) > 0 {
		return sdk.Errorf(sdk.ErrFailedPrecondition, "pipeline", "pipeline %s/%s has unfinished runs (such as %s); cancel them first", ns, name, active[0].Name)
	}
	// The pipeline first: once it is gone nothing starts a run of it, and
	// what is left of it is purged now, or by the next apply of the name
	// if this process stops half-way.
	if err := o.store.delete(ctx, resource.KindPipeline, ns, name); err != nil {
		return err
	}
	if err := o.purgePipeline(ctx, ns, name); err != nil {
		return fmt.Errorf("pipeline %s/%s is deleted, but not all of its runs and versions: %w (applying the name again removes the rest)", ns, name, err)
	}
	o.log.Info("pipeline deleted", "namespace", ns, "pipeline", name)
	return nil
}

// purgePipeline removes what a deleted pipeline left: its runs and what
// they stored, its versions and its pipeline-scoped storage.
func (o *Orchestrator) purgePipeline(ctx context.Context, ns, name string) error {
	st, err := o.storage(ctx)
	if err != nil {
		return err
	}
	sel := map[string]string{"pipeline": name}
	for {
		runs, _, err := list[resource.Run](ctx, o.store, resource.KindRun, ns, sel, 100, "")
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			break
		}
		for _, r := range runs {
			if r.Pipeline != name {
				continue
			}
			if err := deleteScope(ctx, st, storage.Scope{Kind: storage.ScopeRun, Namespace: ns, Pipeline: name, Run: r.Name}); err != nil {
				return fmt.Errorf("delete the stored objects of run %s: %w", r.Name, err)
			}
			if err := o.deleteRun(ctx, ns, r.Name); err != nil {
				return err
			}
			o.trackActive(&r, false)
		}
	}
	for {
		vs, _, err := list[resource.PipelineVersion](ctx, o.store, resource.KindPipelineVersion, ns, sel, 100, "")
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			break
		}
		for _, v := range vs {
			if err := o.store.delete(ctx, resource.KindPipelineVersion, ns, v.Name); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				return fmt.Errorf("delete version %d: %w", v.Version, err)
			}
		}
	}
	if err := deleteScope(ctx, st, storage.Scope{Kind: storage.ScopePipeline, Namespace: ns, Pipeline: name}); err != nil {
		return fmt.Errorf("delete the pipeline's stored objects: %w", err)
	}
	o.mu.Lock()
	for k := range o.plans {
		if strings.HasPrefix(k, ns+"/"+name+".v") {
			delete(o.plans, k)
		}
	}
	o.mu.Unlock()
	return nil
}

// deleteRun deletes a run's job documents, then its own.
func (o *Orchestrator) deleteRun(ctx context.Context, ns, name string) error {
	o.forgetRun(ns, name)
	for {
		jobs, _, err := list[resource.Job](ctx, o.store, resource.KindJob, ns, map[string]string{"run": name}, 1000, "")
		if err != nil {
			return fmt.Errorf("list the jobs of run %s: %w", name, err)
		}
		if len(jobs) == 0 {
			break
		}
		// A few deletes at once: the database's round trips overlap.
		errs := make(chan error, len(jobs))
		next := make(chan resource.Job)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range next {
					if err := o.store.delete(ctx, resource.KindJob, ns, j.Meta.Name); err != nil && !errors.Is(err, sdk.ErrNotFound) {
						errs <- fmt.Errorf("delete job %s of run %s: %w", j.JobStatus.Name, name, err)
					}
				}
			}()
		}
		for _, j := range jobs {
			next <- j
		}
		close(next)
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	if err := o.store.delete(ctx, resource.KindRun, ns, name); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return fmt.Errorf("delete run %s: %w", name, err)
	}
	return nil
}

// deleteScope deletes every object of a storage scope.
func deleteScope(ctx context.Context, st storage.Storage, scope storage.Scope) error {
	for {
		page, err := st.List(ctx, &storage.ListRequest{Scope: scope, PageSize: 500})
		if err != nil {
			return err
		}
		if len(page.Items) == 0 {
			return nil
		}
		for _, it := range page.Items {
			if err := st.Delete(ctx, it.Ref); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				return err
			}
		}
	}
}

// Plugins reports the state of every plugin, and of the removed ones still
// serving the jobs that held them.
func (o *Orchestrator) Plugins(ctx context.Context) []pluginhost.Status {
	return o.opts.Plugins.Report()
}

// coerceParams turns `-p k=v` strings into the declared types, with the
// defaults of the params not given.
func coerceParams(raw json.RawMessage, given map[string]string) (map[string]any, error) {
	// Only the params are read: a spec of thousands of jobs is not decoded
	// for each run.
	var pl struct {
		Spec struct {
			Params []spec.Param `json:"params"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &pl); err != nil {
		return nil, fmt.Errorf("read stored pipeline spec: %w", err)
	}
	s := spec.Spec{Params: pl.Spec.Params}
	return s.ResolveParams(given)
}
