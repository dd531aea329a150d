package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

// ActionSuite is the conformance suite of action plugins. Each subtest gets
// a fresh plugin from newPlugin, configured (with a Host, if its types need
// one).
//
// The suite learns how to call each action type from the type's
// ParamsSchema, which must be a JSON Schema object with "properties", the
// "type" of each property, "required", and at least one entry in
// "examples": parameters that run without reaching outside the machine (a
// notify with an empty url, a script that echoes). Each example is run
// with an expression context in which params, job, jobs, actions, trigger
// and run are empty objects.
func ActionSuite(t *testing.T, newPlugin Factory[action.Action]) {
	ctx := context.Background()

	t.Run("describe lists action types", func(t *testing.T) {
		p := newPlugin(t)
		m := checkManifest(t, p, sdk.CategoryAction)
		types := m.TypesOf(sdk.CategoryAction)
		if len(types) == 0 {
			t.Fatalf("manifest lists no action types")
		}
		checkTypes(t, types)
		listed, err := action.ListTypes(ctx, p)
		if err != nil {
			t.Fatalf("ListTypes: %v", err)
		}
		if got, want := typeNames(listed), typeNames(types); !reflect.DeepEqual(got, want) {
			t.Fatalf("ListTypes = %v, want the manifest's action types %v", got, want)
		}
	})

	t.Run("every example ends with a valid result", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range actionTypes(t, p) {
			for i, ex := range examples(t, ti) {
				rec := &Recorder{}
				res, err := p.Run(ctx, exampleRun(ti.Name, ex), rec)
				if err != nil {
					t.Errorf("Run(%s, examples[%d]): %v", ti.Name, i, err)
					continue
				}
				if res == nil || !res.Status.Valid() {
					t.Errorf("Run(%s, examples[%d]) returned result %+v, want one with a valid status", ti.Name, i, res)
					continue
				}
				for k, v := range rec.Outputs() {
					if got, ok := res.Outputs[k]; !ok || !jsonEqual(got, v) {
						t.Errorf("Run(%s, examples[%d]): output %q = %v was sent as an event but the result has %v", ti.Name, i, k, v, got)
					}
				}
			}
		}
	})

	t.Run("unknown type is invalid", func(t *testing.T) {
		_, err := newPlugin(t).Run(ctx, &action.RunRequest{Type: "no-such-type", Name: "x", Params: map[string]any{}, Context: emptyContext()}, &Recorder{})
		assertInvalid(t, "Run(no-such-type)", err, "type")
	})

	t.Run("params of the wrong shape name the param", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range actionTypes(t, p) {
			ex := examples(t, ti)[0]
			for _, name := range schemaProperties(ti.ParamsSchema) {
				bad, ok := wrongShape(ti.ParamsSchema, name)
				if !ok {
					continue
				}
				params := maps.Clone(ex)
				params[name] = bad
				_, err := p.Run(ctx, exampleRun(ti.Name, params), &Recorder{})
				assertInvalid(t, fmt.Sprintf("Run(%s) with %s = %#v", ti.Name, name, bad), err, "params."+name)
			}
			for _, name := range schemaRequired(ti.ParamsSchema) {
				params := maps.Clone(ex)
				delete(params, name)
				_, err := p.Run(ctx, exampleRun(ti.Name, params), &Recorder{})
				assertInvalid(t, fmt.Sprintf("Run(%s) without %s", ti.Name, name), err, "params."+name)
			}
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newPlugin(t)
		for _, ti := range actionTypes(t, p) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := p.Run(cctx, exampleRun(ti.Name, examples(t, ti)[0]), &Recorder{})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run(%s) with a cancelled context: error = %v, want context.Canceled", ti.Name, err)
			}
		}
	})
}

// Recorder is an action.Events that keeps what it receives, for tests.
type Recorder struct {
	mu      sync.Mutex
	logs    []LogLine
	outputs map[string]any
}

// LogLine is one line a Recorder received.
type LogLine struct {
	Stream, Text string
}

var _ action.Events = (*Recorder)(nil)

// Log records a line.
func (r *Recorder) Log(stream, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, LogLine{stream, text})
	return nil
}

// Output records an output.
func (r *Recorder) Output(key string, value any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outputs == nil {
		r.outputs = map[string]any{}
	}
	r.outputs[key] = value
	return nil
}

// Lines returns the recorded log lines.
func (r *Recorder) Lines() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogLine(nil), r.logs...)
}

// Outputs returns the recorded outputs.
func (r *Recorder) Outputs() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.outputs)
}

func actionTypes(t *testing.T, p action.Action) []sdk.TypeInfo {
	t.Helper()
	m, err := p.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	types := m.TypesOf(sdk.CategoryAction)
	if len(types) == 0 {
		t.Fatalf("manifest lists no action types")
	}
	return types
}

func exampleRun(typ string, params map[string]any) *action.RunRequest {
	return &action.RunRequest{
		Type: typ, Name: "conformance", Params: params, Context: emptyContext(),
		Ref: sdk.ExecutionRef{Namespace: "default", Pipeline: "conformance", Run: "run-1", Job: "job", Action: "conformance", Attempt: 1},
	}
}

func emptyContext() map[string]any {
	return map[string]any{
		"params": map[string]any{}, "job": map[string]any{}, "jobs": map[string]any{},
		"actions": map[string]any{}, "trigger": map[string]any{}, "run": map[string]any{},
	}
}

// The helpers below read the parameter schemas of action and job types.

// checkTypes asserts that types have names, unique ones, and object
// parameter schemas with examples.
func checkTypes(t *testing.T, types []sdk.TypeInfo) {
	t.Helper()
	seen := map[string]bool{}
	for _, ti := range types {
		if ti.Name == "" {
			t.Errorf("a type has no name")
		}
		if seen[ti.Name] {
			t.Errorf("type %q is listed twice", ti.Name)
		}
		seen[ti.Name] = true
		if ti.ParamsSchema["type"] != "object" {
			t.Errorf("type %q: params schema type is %v, want object", ti.Name, ti.ParamsSchema["type"])
		}
		examples(t, ti)
	}
}

func typeNames(types []sdk.TypeInfo) []string {
	var out []string
	for _, ti := range types {
		out = append(out, ti.Name)
	}
	sort.Strings(out)
	return out
}

// examples returns the "examples" of a type's params schema; a type without
// examples fails the test, since the suite cannot call it.
func examples(t *testing.T, ti sdk.TypeInfo) []map[string]any {
	t.Helper()
	raw, _ := ti.ParamsSchema["examples"].([]any)
	var out []map[string]any
	for i, e := range raw {
		m, ok := e.(map[string]any)
		if !ok {
			t.Fatalf("type %q: params schema examples[%d] is %T, want an object", ti.Name, i, e)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatalf("type %q: params schema has no examples; the conformance suite runs them", ti.Name)
	}
	return out
}

func schemaProperties(schema map[string]any) []string {
	props, _ := schema["properties"].(map[string]any)
	var out []string
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func schemaRequired(schema map[string]any) []string {
	var out []string
	switch r := schema["required"].(type) {
	case []any:
		for _, v := range r {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, r...)
	}
	return out
}

// wrongShape returns a value whose JSON type the property's schema does not
// allow, or false if the schema declares no type.
func wrongShape(schema map[string]any, name string) (any, bool) {
	props, _ := schema["properties"].(map[string]any)
	prop, _ := props[name].(map[string]any)
	var allowed []string
	switch ty := prop["type"].(type) {
	case string:
		allowed = []string{ty}
	case []any:
		for _, v := range ty {
			if s, ok := v.(string); ok {
				allowed = append(allowed, s)
			}
		}
	case []string:
		allowed = ty
	}
	if len(allowed) == 0 {
		return nil, false
	}
	for _, c := range []struct {
		types []string
		value any
	}{
		{[]string{"object"}, map[string]any{"unexpected": []any{1.0}}},
		{[]string{"array"}, []any{map[string]any{"unexpected": true}}},
		{[]string{"boolean"}, true},
		{[]string{"number", "integer"}, 12.5},
		{[]string{"string"}, "unexpected text"},
	} {
		ok := true
		for _, ty := range c.types {
			if slices.Contains(allowed, ty) {
				ok = false
			}
		}
		if ok {
			return c.value, true
		}
	}
	return nil, false
}

// jsonEqual compares two JSON-like values as JSON, so that 1 and 1.0 are
// equal, as they are after a trip over the wire.
func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return reflect.DeepEqual(a, b)
	}
	var va, vb any
	if json.Unmarshal(ja, &va) != nil || json.Unmarshal(jb, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
