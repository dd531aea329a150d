package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// load parses and validates a pipeline file against the types this
// server's plugins provide.
func (o *Orchestrator) load(ctx context.Context, filename string, source []byte) (*spec.Pipeline, error) {
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return nil, err
	}
	p, err := spec.Load(filename, source, spec.Options{
		ActionType:  func(name string) bool { _, ok := idx.actions[name]; return ok },
		JobType:     func(name string) bool { _, ok := idx.jobs[name]; return ok },
		MinInterval: o.opts.MinInterval,
	})
	if err != nil {
		return nil, validationError(err)
	}
	return p, nil
}

// validationError turns the spec's errors into the API's.
func validationError(err error) error {
	var list spec.Errors
	if !errors.As(err, &list) {
		return err
	}
	ve := &api.ValidationError{}
	for _, e := range list {
		ve.Problems = append(ve.Problems, api.Problem{File: e.File, Line: e.Line, Field: e.Path, Message: e.Message})
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
func (o *Orchestrator) ApplyPipeline(ctx context.Context, req api.ApplyRequest) (*api.ApplyResult, error) {
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
			if err := o.store.create(ctx, version(1)); err != nil && !errors.Is(err, sdk.ErrAlreadyExists) {
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
			return &api.ApplyResult{Pipeline: pl, Outcome: "created"}, nil
		case err != nil:
			return nil, err
		case cur.Hash == hash:
			return &api.ApplyResult{Pipeline: cur, Outcome: "unchanged"}, nil
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
		return &api.ApplyResult{Pipeline: cur, Outcome: "updated"}, nil
	}
	return nil, sdk.Errorf(sdk.ErrConflict, "", "pipeline %s/%s is being changed by someone else; try again", ns, name)
}

// ListPipelines lists a namespace's pipelines.
func (o *Orchestrator) ListPipelines(ctx context.Context, ns string, page api.PageRequest) (*api.Page[resource.Pipeline], error) {
	items, next, err := list[resource.Pipeline](ctx, o.store, resource.KindPipeline, ns, nil, page.Size, page.Token)
	if err != nil {
		return nil, err
	}
	return &api.Page[resource.Pipeline]{Items: items, NextPageToken: next}, nil
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

// DeletePipeline deletes a pipeline. Its versions and runs are kept, so
// past runs stay readable; a pipeline with unfinished runs is not deleted.
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
	return o.store.delete(ctx, resource.KindPipeline, ns, name)
}

// Plugins reports the state of every plugin.
func (o *Orchestrator) Plugins(ctx context.Context) []pluginhost.Status {
	return o.opts.Plugins.List()
}

// coerceParams turns `-p k=v` strings into the declared types, with the
// defaults of the params not given.
func coerceParams(raw json.RawMessage, given map[string]string) (map[string]any, error) {
	var pl spec.Pipeline
	if err := json.Unmarshal(raw, &pl); err != nil {
		return nil, fmt.Errorf("read stored pipeline spec: %w", err)
	}
	return pl.Spec.ResolveParams(given)
}
