package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/schema"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Engine is a named engine of the server's configuration: an engine type
// with its parameters, and actions run around every job on it (the
// engine's setup and teardown jobs).
type Engine struct {
	Name   string
	Type   string
	Params map[string]any
	// Setup actions run in each job's workspace before the job's own
	// actions, at every execution of the job (a job that waited for an
	// approval runs them again in its new workspace); a failure fails the
	// job. Teardown actions run after the job's actions whatever happened
	// to them, unless the job was taken from this worker; a failure fails
	// the job.
	Setup, Teardown []spec.Action
}

// Phases of an action: the job's own, or its engine's setup or teardown.
const (
	phaseSetup    = "setup"
	phaseTeardown = "teardown"
)

// setEngines checks the named engines and applies the default: one engine
// named local of type local.
func (o *Options) setEngines() error {
	if len(o.Engines) == 0 {
		o.Engines = []Engine{{Name: "local", Type: "local"}}
	}
	seen := map[string]bool{}
	for _, e := range o.Engines {
		if e.Name == "" || e.Type == "" {
			return fmt.Errorf("orchestrator: an engine needs a name and a type (got name %q, type %q)", e.Name, e.Type)
		}
		if seen[e.Name] {
			return fmt.Errorf("orchestrator: engine %q is defined twice", e.Name)
		}
		seen[e.Name] = true
	}
	if o.DefaultEngine == "" {
		o.DefaultEngine = o.Engines[0].Name
	}
	if !seen[o.DefaultEngine] {
		return fmt.Errorf("orchestrator: the default engine %q is not one of the engines (%s)", o.DefaultEngine, strings.Join(engineNames(o.Engines), ", "))
	}
	return nil
}

func engineNames(es []Engine) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func (o *Orchestrator) namedEngine(name string) *Engine {
	for i := range o.opts.Engines {
		if o.opts.Engines[i].Name == name {
			return &o.opts.Engines[i]
		}
	}
	return nil
}

// engineFor resolves the engine a job runs on. A pipeline's `engine: NAME`
// names a configured engine; failing that, an engine type. An engine
// written with options (`{type: docker, image: ...}`) is always a type.
// No engine at all is the server's default engine.
func (o *Orchestrator) engineFor(p *plan, pj *planJob) (typ string, opts map[string]any, named *Engine) {
	ref := p.Engine
	if pj.Engine != nil {
		ref = *pj.Engine
	}
	name := ref.Type
	if name == "" {
		name = o.opts.DefaultEngine
	}
	if len(ref.Options) == 0 {
		if e := o.namedEngine(name); e != nil {
			return e.Type, maps.Clone(e.Params), e
		}
	}
	return name, ref.Options, nil
}

// withEngineJobs adds the actions of a job's engine's setup and teardown
// around its own actions, named setup:NAME and teardown:NAME.
func withEngineJobs(e *Engine, actions []planAction) []planAction {
	if e == nil || (len(e.Setup) == 0 && len(e.Teardown) == 0) {
		return actions
	}
	out := make([]planAction, 0, len(e.Setup)+len(actions)+len(e.Teardown))
	for _, a := range e.Setup {
		out = append(out, engineAction(a, phaseSetup))
	}
	out = append(out, actions...)
	for _, a := range e.Teardown {
		out = append(out, engineAction(a, phaseTeardown))
	}
	return out
}

func engineAction(a spec.Action, phase string) planAction {
	pa := planActionOf(a, nil)
	pa.Name = phase + ":" + a.Name
	pa.Phase = phase
	return pa
}

// addEngineJobs adds each job's engine's setup and teardown actions to a
// plan.
func (o *Orchestrator) addEngineJobs(p *plan) {
	for i := range p.Jobs {
		pj := &p.Jobs[i]
		_, _, e := o.engineFor(p, pj)
		pj.Actions = withEngineJobs(e, pj.Actions)
	}
}

// checkEngines refuses a pipeline whose jobs name an engine that is
// neither configured nor a type an engine plugin provides.
func (o *Orchestrator) checkEngines(ctx context.Context, p *spec.Pipeline, idx *typeIndex) error {
	var problems spec.Errors
	var failed error
	check := func(path string, e *spec.Engine) {
		if e == nil || e.Type == "" {
			return
		}
		if len(e.Options) == 0 && e.Image == "" && o.namedEngine(e.Type) != nil {
			return
		}
		if _, ok := idx.engines[e.Type]; ok {
			msgs, err := o.inlineProblems(ctx, idx, e.Type, engineOf(e).Options)
			if err != nil {
				failed = err
			}
			for _, m := range msgs {
				problems = append(problems, p.Errorf(path, "%s", m))
			}
			return
		}
		known := engineNames(o.opts.Engines)
		for t := range idx.engines {
			if !slices.Contains(known, t) {
				known = append(known, t)
			}
		}
		slices.Sort(known)
		problems = append(problems, p.Errorf(path, "no engine %q: this server's engines are %s%s", e.Type, strings.Join(known, ", "), didYouMean(e.Type, known)))
	}
	check("spec.engine", p.Spec.Engine)
	for i, j := range p.Spec.Jobs {
		check(fmt.Sprintf("spec.jobs[%d].engine", i), j.Engine)
	}
	if len(problems) > 0 {
		return problems
	}
	return failed
}

// didYouMean suggests the closest of names to s, or "".
func didYouMean(s string, names []string) string {
	if best := expr.Suggest(s, names); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// engineTeardown runs the teardown actions of a job's engine. They run
// even when the job's context ended (cancelled, timed out, the server
// stopping), within a minute, but not when the job was taken from this
// worker (its lease lost, or another execution fenced it out): the job is
// another execution's then. The outcome's reason says which action
// failed; stop is true when the job must end with out as it is (an
// engine that stopped under the teardown interrupts the job).
func (o *Orchestrator) engineTeardown(ctx context.Context, run *resource.Run, p *plan, pj *planJob, actions []planAction,
	ref sdk.ExecutionRef, exprCtx func(*jobRefs) map[string]any, e *execution) (out jobOutcome, stop bool) {
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) || errors.Is(cause, errFenced) {
		return jobOutcome{}, false
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
	}
	for _, a := range actions {
		st, msg, _ := o.runAction(ctx, run, p, pj, a, ref, exprCtx, nil)
		if why := e.interruptedBy(); why != "" {
			return jobOutcome{status: resource.StatusFailure, interrupted: why}, true
		}
		if (st == resource.StatusFailure || st == resource.StatusCancelled) && a.OnFailure != "continue" && a.OnFailure != "succeed" && out.reason == "" {
			out.reason = fmt.Sprintf("action %s failed", a.Name)
			if msg != "" {
				out.reason += ": " + msg
			}
		}
	}
	return out, false
}

// EngineProblem is what is wrong with a named engine: Engine is its index
// in Options.Engines, Field the field of its entry ("type", "shell[0]").
type EngineProblem struct {
	Engine  int
	Field   string
	Message string
}

// CheckEngines checks that an engine plugin provides each named engine's
// type, and its parameters against the schema the plugin describes for
// that type. It launches the engine plugins.
func (o *Orchestrator) CheckEngines(ctx context.Context) ([]EngineProblem, error) {
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return nil, err
	}
	var out []EngineProblem
	for i, e := range o.opts.Engines {
		plugin, ok := idx.engines[e.Type]
		if !ok {
			types := slices.Sorted(maps.Keys(idx.engines))
			out = append(out, EngineProblem{Engine: i, Field: "type", Message: fmt.Sprintf("no engine plugin provides engine type %q (types: %s)%s", e.Type, strings.Join(types, ", "), didYouMean(e.Type, types))})
			continue
		}
		p, err := o.plugin(plugin)
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, o.opts.PluginWait)
		s, err := p.TypeSchema(wctx, sdk.CategoryEngine, e.Type)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("engine %s: the schema of type %s from %s: %w", e.Name, e.Type, plugin, err)
		}
		if s == nil {
			continue
		}
		params := e.Params
		if params == nil {
			params = map[string]any{}
		}
		for _, pr := range s.Check(params, schema.Options{}) {
			out = append(out, EngineProblem{Engine: i, Field: pr.Path, Message: pr.Message})
		}
	}
	return out, nil
}

// inlineProblems says which options of an inline engine of type typ its
// type does not let a pipeline set, one message per option.
func (o *Orchestrator) inlineProblems(ctx context.Context, idx *typeIndex, typ string, opts map[string]any) ([]string, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	plugin, ok := idx.engines[typ]
	if !ok {
		return nil, nil // an unknown type is reported on its own
	}
	p, err := o.plugin(plugin)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, o.opts.PluginWait)
	defer cancel()
	s, err := p.TypeSchema(wctx, sdk.CategoryEngine, typ)
	if err != nil {
		return nil, fmt.Errorf("engine type %s: its schema from %s: %w", typ, plugin, err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if s != nil {
			if allowed, _ := s.Property(k)[sdk.SchemaPipeline].(bool); allowed {
				continue
			}
		}
		out = append(out, fmt.Sprintf("a pipeline cannot set %s of engine type %s (it reaches beyond the job); the server's administrator sets it in a named engine of the server's configuration, which the pipeline selects with engine: NAME", k, typ))
	}
	return out, nil
}
