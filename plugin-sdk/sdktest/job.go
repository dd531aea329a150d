package sdktest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/job"
)

// JobSuite is the conformance suite of job plugins. Each subtest gets a
// fresh plugin from newPlugin, configured.
//
// As with ActionSuite, each job type's ParamsSchema describes its `with`
// arguments (properties with their "type", "required") and carries at
// least one entry in "examples", which the suite expands.
func JobSuite(t *testing.T, newPlugin Factory[job.Job]) {
	ctx := context.Background()

	t.Run("describe lists job types", func(t *testing.T) {
		p := newPlugin(t)
		m := checkManifest(t, p, sdk.CategoryJob)
		types := m.TypesOf(sdk.CategoryJob)
		if len(types) == 0 {
			t.Fatalf("manifest lists no job types")
		}
		checkTypes(t, types)
		listed, err := job.ListTypes(ctx, p)
		if err != nil {
			t.Fatalf("ListTypes: %v", err)
		}
		if got, want := typeNames(listed), typeNames(types); !reflect.DeepEqual(got, want) {
			t.Fatalf("ListTypes = %v, want the manifest's job types %v", got, want)
		}
	})

	t.Run("every example expands into well-formed actions", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range jobTypes(t, p) {
			for i, ex := range examples(t, ti) {
				resp, err := p.Expand(ctx, exampleExpand(ti.Name, ex))
				if err != nil {
					t.Errorf("Expand(%s, examples[%d]): %v", ti.Name, i, err)
					continue
				}
				checkExpansion(t, fmt.Sprintf("Expand(%s, examples[%d])", ti.Name, i), resp)
			}
		}
	})

	t.Run("unknown type is invalid", func(t *testing.T) {
		_, err := newPlugin(t).Expand(ctx, &job.ExpandRequest{Type: "no-such-type", JobName: "x", With: map[string]any{}})
		assertInvalid(t, "Expand(no-such-type)", err, "type")
	})

	t.Run("arguments of the wrong shape name the argument", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range jobTypes(t, p) {
			ex := examples(t, ti)[0]
			for _, name := range schemaProperties(ti.ParamsSchema) {
				bad, ok := wrongShape(ti.ParamsSchema, name)
				if !ok {
					continue
				}
				with := maps.Clone(ex)
				with[name] = bad
				_, err := p.Expand(ctx, exampleExpand(ti.Name, with))
				assertInvalid(t, fmt.Sprintf("Expand(%s) with %s = %#v", ti.Name, name, bad), err, "with."+name)
			}
			for _, name := range schemaRequired(ti.ParamsSchema) {
				with := maps.Clone(ex)
				delete(with, name)
				_, err := p.Expand(ctx, exampleExpand(ti.Name, with))
				assertInvalid(t, fmt.Sprintf("Expand(%s) without %s", ti.Name, name), err, "with."+name)
			}
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range jobTypes(t, p) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := p.Expand(cctx, exampleExpand(ti.Name, examples(t, ti)[0]))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Expand(%s) with a cancelled context: error = %v, want context.Canceled", ti.Name, err)
			}
		}
	})
}

// checkExpansion asserts what the core needs of an expansion: actions with
// unique names and types, storage entries with paths and known scopes.
func checkExpansion(t *testing.T, what string, resp *job.ExpandResponse) {
	t.Helper()
	if resp == nil || len(resp.Actions) == 0 {
		t.Errorf("%s returned no actions", what)
		return
	}
	seen := map[string]bool{}
	for i, a := range resp.Actions {
		if a.Name == "" || a.Type == "" {
			t.Errorf("%s: actions[%d] = %+v has no name or no type", what, i, a)
		}
		if seen[a.Name] {
			t.Errorf("%s: action name %q is used twice", what, a.Name)
		}
		seen[a.Name] = true
		for _, mode := range []string{a.OnSuccess, a.OnFailure} {
			if mode != "" && mode != "continue" && mode != "succeed" && mode != "fail" {
				t.Errorf("%s: actions[%d] has on_success/on_failure %q, want continue, succeed or fail", what, i, mode)
			}
		}
	}
	for _, e := range append(append([]job.StorageEntry(nil), resp.StorageGet...), resp.StoragePut...) {
		if e.Path == "" {
			t.Errorf("%s: storage entry %+v has no path", what, e)
		}
		if e.Scope != "" && e.Scope != job.ScopeRun && e.Scope != job.ScopePipeline {
			t.Errorf("%s: storage entry %+v has scope %q, want run or pipeline", what, e, e.Scope)
		}
	}
}

func jobTypes(t *testing.T, p job.Job) []sdk.TypeInfo {
	t.Helper()
	m, err := p.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	types := m.TypesOf(sdk.CategoryJob)
	if len(types) == 0 {
		t.Fatalf("manifest lists no job types")
	}
	return types
}

func exampleExpand(typ string, with map[string]any) *job.ExpandRequest {
	return &job.ExpandRequest{Type: typ, JobName: "conformance-job", With: with, Context: map[string]any{"params": map[string]any{}}}
}
