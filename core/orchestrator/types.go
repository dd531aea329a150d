package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/schema"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Action and job types, and the schemas of their params
//
// A pipeline names a plugin's type as plugin/type, the plugin by its short
// name (standard/run, terraform/plan) or its full one
// (action-standard/run, job-terraform/plan); an action type that no other
// plugin provides under the same name may also be written alone (run).
// The index of types (indexTypes) is built from the plugins' manifests;
// the schema of a type's params is the one the running launch of its
// plugin described, compiled by the plugin host. The core checks params
// against it at `pipeline apply` (load) and again when the action runs or
// the job expands, once their ${{ }} are interpolated (checkParams).

// manifestWithin reads a plugin's manifest, launching it if needed, but
// waits at most PluginWait for it, so that indexing types never hangs on
// a plugin that cannot start.
func (o *Orchestrator) manifestWithin(ctx context.Context, p *pluginhost.Plugin) (*sdk.Manifest, error) {
	wctx, cancel := context.WithTimeout(ctx, o.opts.PluginWait)
	defer cancel()
	m, err := p.Manifest(wctx)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return nil, o.notStarted(p.Name(), err)
	}
	return m, err
}

// lookupType finds an action or job type as a pipeline names it. A name
// not in the index while some plugin had not started is looked up again in
// a new index, in case that plugin provides it and has started since.
func (o *Orchestrator) lookupType(ctx context.Context, c sdk.Category, name string) (typeRef, error) {
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return typeRef{}, err
	}
	if ref, ok := idx.find(c, name); ok {
		return ref, nil
	}
	if len(idx.down) > 0 {
		fresh, err := o.indexTypes(ctx)
		if err != nil {
			return typeRef{}, err
		}
		o.mu.Lock()
		if o.types == idx {
			o.types = fresh
		}
		o.mu.Unlock()
		idx = fresh
		if ref, ok := idx.find(c, name); ok {
			return ref, nil
		}
	}
	return typeRef{}, idx.unknown(c, name)
}

func (idx *typeIndex) find(c sdk.Category, name string) (typeRef, bool) {
	var ref typeRef
	var ok bool
	switch c {
	case sdk.CategoryAction:
		ref, ok = idx.actions[name]
	case sdk.CategoryJob:
		ref, ok = idx.jobs[name]
	}
	return ref, ok
}

// unknown says that no plugin provides a type, suggesting the closest
// name written the way the pipeline wrote it, and naming the plugins that
// did not start.
func (idx *typeIndex) unknown(c sdk.Category, name string) error {
	names := slices.Sorted(maps.Keys(idx.actions))
	if c == sdk.CategoryJob {
		names = slices.Sorted(maps.Keys(idx.jobs))
	}
	// Suggest in the form the pipeline used: a full plugin name for a
	// full name, a short one for a short one.
	full := strings.HasPrefix(name, c.String()+"-")
	var candidates []string
	for _, n := range names {
		if strings.HasPrefix(n, c.String()+"-") == full {
			candidates = append(candidates, n)
		}
	}
	msg := fmt.Sprintf("unknown %s type %q", c, name)
	if s := expr.Suggest(name, candidates); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if plugin, typ, ok := strings.Cut(name, "/"); ok {
		// A type another plugin provides, or a plugin with other types.
		var same []string
		for _, n := range candidates {
			p, t, _ := strings.Cut(n, "/")
			if t == typ || p == plugin {
				same = append(same, n)
			}
		}
		if len(same) > 0 && len(same) <= 5 {
			msg += fmt.Sprintf(" (there are %s)", strings.Join(quoteAll(same), ", "))
		}
	}
	if len(idx.down) > 0 {
		var why []string
		for _, p := range slices.Sorted(maps.Keys(idx.down)) {
			first, _, _ := strings.Cut(idx.down[p].Error(), "\n")
			why = append(why, fmt.Sprintf("%s (%s)", p, first))
		}
		msg += fmt.Sprintf("; the types of plugins that did not start are not known: %s", strings.Join(why, "; "))
	}
	return sdk.Errorf(sdk.ErrFailedPrecondition, "type", "%s", msg)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, e := range s {
		out[i] = fmt.Sprintf("%q", e)
	}
	return out
}

// typeSchema returns the schema of a type's params from the running launch
// of its plugin (nil when the type declares none), waiting at most
// PluginWait for the plugin to start.
func (o *Orchestrator) typeSchema(ctx context.Context, c sdk.Category, ref typeRef) (*schema.Schema, error) {
	p, err := o.pluginAt(ctx, ref.plugin, c) // the version the job holds, if any
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, o.opts.PluginWait)
	defer cancel()
	s, err := p.TypeSchema(wctx, c, ref.name)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return nil, o.notStarted(ref.plugin, err)
	}
	return s, err
}

// specTypes is how spec.Load looks types up at apply: each error is a
// problem at the field that names the type.
func (o *Orchestrator) specTypes(ctx context.Context, c sdk.Category) func(string) (*schema.Schema, error) {
	return func(name string) (*schema.Schema, error) {
		ref, err := o.lookupType(ctx, c, name)
		if err != nil {
			return nil, problemOnly(err)
		}
		s, err := o.typeSchema(ctx, c, ref)
		if err != nil {
			return nil, fmt.Errorf("%s type %q: its plugin %s is not available, so its params cannot be checked: %s", c, name, ref.plugin, firstLine(problemOnly(err)))
		}
		return s, nil
	}
}

// problemOnly drops the field an *sdk.Error names, which the pipeline's
// own field path replaces.
func problemOnly(err error) error {
	var e *sdk.Error
	if errors.As(err, &e) && e.Message != "" {
		return fmt.Errorf("%s", e.Message)
	}
	return err
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// checkParams checks an action's params or a job's with, interpolated,
// against the schema of its type, just before its plugin gets them. The
// error names each field that does not match.
func (o *Orchestrator) checkParams(ctx context.Context, c sdk.Category, ref typeRef, typ, field string, params map[string]any) error {
	s, err := o.typeSchema(ctx, c, ref)
	if err != nil || s == nil {
		return err
	}
	var probs []schema.Problem
	if c == sdk.CategoryAction {
		probs = spec.CheckActionParams(s, params, schema.Options{})
	} else {
		probs = s.Check(params, schema.Options{})
	}
	if len(probs) == 0 {
		return nil
	}
	msgs := make([]string, len(probs))
	for i, p := range probs {
		p.Path = schema.Join(field, p.Path)
		msgs[i] = p.String()
	}
	return sdk.Errorf(sdk.ErrInvalidArgument, field, "the params of %s type %s do not match its schema once interpolated: %s", c, typ, strings.Join(msgs, "; "))
}
