package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
)

// planFromSpec derives the scheduler's plan from a stored, normalized spec.
func planFromSpec(raw json.RawMessage) (*plan, error) {
	var pl spec.Pipeline
	if err := json.Unmarshal(raw, &pl); err != nil {
		return nil, fmt.Errorf("read stored pipeline spec: %w", err)
	}
	s := &pl.Spec
	p := &plan{Namespace: pl.Metadata.Namespace, Name: pl.Metadata.Name, Timeout: s.Timeout.Value(), Concurrency: s.Concurrency,
		Engine: engineOf(s.Engine), Env: map[string]envValue{}}
	for _, prm := range s.Params {
		p.Params = append(p.Params, planParam{Name: prm.Name, Type: prm.Type, Default: prm.Default, Required: prm.Required})
	}
	for k, v := range s.Env {
		p.Env[k] = envValue{Value: v.Value, FromCredential: v.FromCredential}
	}
	for _, j := range s.Jobs {
		pj := planJob{Name: j.Name, Requires: j.Requires, When: j.When, If: j.If, Params: j.Params, Uses: j.Uses, With: j.With,
			Timeout: j.Timeout.Value(), Retries: j.Retries, RunsOn: j.RunsOn}
		if j.Engine != nil {
			e := engineOf(j.Engine)
			pj.Engine = &e
		}
		for _, a := range j.Actions {
			pj.Actions = append(pj.Actions, planActionOf(a, func(k string, v spec.Value) {
				// Resolved by jobEnv when the job runs, never written
				// into the action's params.
				p.Env[actionEnvKey(j.Name, a.Name, k)] = envValue{FromCredential: v.FromCredential}
			}))
		}
		for _, e := range j.Storage.Get {
			pj.Get = append(pj.Get, storageEntry{Path: e.Path, Scope: e.Scope})
		}
		for _, e := range j.Storage.Put {
			pj.Put = append(pj.Put, storageEntry{Path: e.Path, Scope: e.Scope})
		}
		p.Jobs = append(p.Jobs, pj)
	}
	return p, nil
}

// planActionOf is an action of a spec as the worker runs it. Env values
// from credentials go to credEnv, never into the action's params.
func planActionOf(a spec.Action, credEnv func(string, spec.Value)) planAction {
	params := a.ActionParams()
	if len(a.Env) > 0 {
		env := map[string]any{}
		for k, v := range a.Env {
			if v.FromCredential != "" {
				if credEnv != nil {
					credEnv(k, v)
				}
				continue
			}
			env[k] = v.Value
		}
		params["env"] = env
	}
	typ := a.Type
	if typ == "" {
		typ = "run"
	}
	return planAction{Name: a.Name, Type: typ, If: a.If, Params: params,
		OnSuccess: a.OnSuccess, OnFailure: a.OnFailure, Timeout: a.Timeout.Value()}
}

// engineOf is a spec's engine; an empty one is the server's default.
func engineOf(e *spec.Engine) engineRef {
	if e == nil {
		return engineRef{}
	}
	opts := map[string]any{}
	for k, v := range e.Options {
		opts[k] = v
	}
	if e.Image != "" {
		opts["image"] = e.Image
	}
	return engineRef{Type: e.Type, Options: opts}
}

// planFor returns the plan of the pipeline version a run started with.
// Versions never change, so plans are kept once read.
func (o *Orchestrator) planFor(ctx context.Context, run *resource.Run) (*plan, error) {
	return o.cachedPlan(run.Namespace+"/"+versionName(run.Pipeline, run.PipelineVersion), func() (json.RawMessage, error) {
		v := &resource.PipelineVersion{}
		if err := o.store.get(ctx, resource.KindPipelineVersion, run.Namespace, versionName(run.Pipeline, run.PipelineVersion), v); err != nil {
			return nil, fmt.Errorf("pipeline %s version %d of run %s: %w", run.Pipeline, run.PipelineVersion, run.Name, err)
		}
		return v.Spec, nil
	})
}

// cachedPlan returns the plan kept under key (namespace/pipeline.vN), or
// makes it from the spec load returns and keeps it.
func (o *Orchestrator) cachedPlan(key string, load func() (json.RawMessage, error)) (*plan, error) {
	o.mu.Lock()
	p := o.plans[key]
	o.mu.Unlock()
	if p != nil {
		return p, nil
	}
	spec, err := load()
	if err != nil {
		return nil, err
	}
	if p, err = planFromSpec(spec); err != nil {
		return nil, err
	}
	o.addEngineJobs(p)
	o.mu.Lock()
	o.plans[key] = p
	o.mu.Unlock()
	return p, nil
}

func versionName(pipeline string, version int) string {
	return pipeline + ".v" + strconv.Itoa(version)
}
