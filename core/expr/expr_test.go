package expr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// runContext is a run of the terraform example with prod skipped, in the
// middle of the alpine check.
var runContext = Context{
	Params: map[string]any{"environment": "nonprod", "expected_version": "3.18.0", "list": []any{"a", int64(2)}, "obj": map[string]any{"k": "v"}},
	Job:    Job{Params: map[string]any{"target": "x"}},
	Jobs: map[string]Result{
		"terraform-prod-plan": {Status: "skipped"},
		"test":                {Status: "failure", Outputs: map[string]any{"changed": true}},
	},
	Actions: map[string]Result{
		"version_match": {Status: "success", Outputs: map[string]any{"matched": true, "groups": []any{"VERSION_ID=3.18.0", "3.18.0"}}},
	},
	Trigger: Trigger{Type: "webhook", Name: "on-push", Payload: map[string]any{"ref": "refs/heads/main"}, Headers: map[string]string{"X-Event": "push"}},
	Run:     Run{ID: "r-1", Pipeline: "ci", Namespace: "default"},
}

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`params.environment`, "nonprod"},
		{`jobs.test.status`, "failure"},
		{`jobs["terraform-prod-plan"].status`, "skipped"},
		{`jobs["terraform-prod-plan"].outputs.changed == true`, false},
		{`jobs["terraform-prod-plan"].outputs.changed`, nil},
		{`jobs.test.outputs.changed == true`, true},
		{`actions.version_match.outputs.groups[1] == params.expected_version`, true},
		{`trigger.payload.ref`, "refs/heads/main"},
		{`trigger.payload.missing`, nil},
		{`trigger.headers["X-Event"]`, "push"},
		{`run.id + "/" + run.pipeline + "/" + run.namespace`, "r-1/ci/default"},
		{`job.params.target`, "x"},
		{`params.obj.nope`, nil},
		{`params?.nope`, nil},
		{`jobs.test.outputs.a?.b`, nil},
		{`len(params.list)`, 2},
		{`all(params.list, # != nil)`, true},
		{`upper(params.environment) matches "^NON"`, true},
		{`${{ params.environment == "prod" }}`, false},
	} {
		got, err := Eval(tc.src, runContext)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Eval(%s) = %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		kind      error
	}{
		{`params.nope`, `"params.nope": unknown name "nope" in params`, ErrEval},
		{`params.environmnt`, `"params.environmnt": unknown name "environmnt" in params (did you mean "environment"?)`, ErrEval},
		{`jobs.buidl.status`, `"jobs.buidl.status": unknown name "buidl" in jobs`, ErrEval},
		{`jobs.test.stats`, `"jobs.test.stats": unknown name "stats" in jobs.test (did you mean "status"?)`, ErrCompile},
		{`jobs["terraform-prod-plan"].output`, `"jobs[\"terraform-prod-plan\"].output": unknown name "output" in jobs["terraform-prod-plan"] (did you mean "outputs"?)`, ErrCompile},
		{`run.idd`, `"run.idd": unknown name "idd" in run (did you mean "id"?)`, ErrCompile},
		{`job.params.nope`, `"job.params.nope": unknown name "nope" in job.params`, ErrEval},
		{`foo == 1`, `"foo == 1": unknown name foo`, ErrCompile},
		{`params.environment ==`, `"params.environment ==": unexpected token EOF`, ErrCompile},
		{`repeat("x", 1000)`, `"repeat(\"x\", 1000)": function repeat is not available`, ErrCompile},
		{``, `"": empty expression`, ErrCompile},
		{strings.Repeat("1+", 1100) + "1", `expression is 2201 bytes, longer than 2048`, ErrCompile},
		{`jobs.test.outputs.a.b`, `"jobs.test.outputs.a.b": cannot fetch b from <nil>`, ErrEval},
		{`params.environment + 1`, `"params.environment + 1": invalid operation: string + int`, ErrEval},
	} {
		_, err := Eval(tc.src, runContext)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Eval(%.40s) error = %v; want %v containing %s", tc.src, err, tc.kind, tc.want)
		}
	}
}

func TestEvalBool(t *testing.T) {
	ok, err := EvalBool(`jobs["terraform-prod-plan"].outputs.changed == true`, runContext)
	if err != nil || ok {
		t.Errorf("changed on a skipped plan = %v, %v; want false", ok, err)
	}
	_, err = EvalBool(`params.environment`, runContext)
	if !errors.Is(err, ErrType) || err.Error() != `"params.environment": result is a string, not a boolean` {
		t.Errorf("EvalBool of a string: %v", err)
	}
	_, err = EvalBool(`jobs.test.outputs.nope`, runContext)
	if !errors.Is(err, ErrType) || err.Error() != `"jobs.test.outputs.nope": result is nil, not a boolean` {
		t.Errorf("EvalBool of nil: %v", err)
	}
}

// Evaluation ends with an error, not after a long time or much memory,
// whatever the expression builds.
func TestEvalBounded(t *testing.T) {
	double := `let a = "` + strings.Repeat("x", 64) + `"`
	for _, v := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"} {
		double += "; let " + v + " = " + string(rune(v[0]-1)) + " + " + string(rune(v[0]-1))
	}
	deep := `let a = [1, 1]`
	for _, v := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"} {
		deep += "; let " + v + " = [" + string(rune(v[0]-1)) + ", " + string(rune(v[0]-1)) + "]"
	}
	for _, tc := range []struct{ src, want string }{
		{double + "; len(p)", "string is longer than 1048576 bytes"},
		{`map(1..1000, map(1..1000, 1))`, "evaluation visits more than 100000 elements"},
		{`reduce(1..40, #acc + #acc, "xx")`, "function reduce is not available"},
		{`toJSON(params)`, "function toJSON is not available"},
		{`string(params)`, "function string is not available"},
		{`flatten([[1]])`, "function flatten is not available"},
		{`map(1..20000, #)`, "has more than 10000 items"},
	} {
		_, err := Eval(tc.src, runContext)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Eval(%.60s) = %v; want an error containing %q", tc.src, err, tc.want)
		}
	}
	_, err := Interpolate("${{ "+deep+"; z }}", runContext)
	if err == nil || !strings.Contains(err.Error(), "value renders to more than 1048576 bytes") {
		t.Errorf("rendering 2^26 shared elements: %v", err)
	}
}

func TestCompileScope(t *testing.T) {
	scope := &Scope{Params: []string{"ref"}, Jobs: []string{"build", "test"}, Actions: []string{"read"}, JobParams: []string{}}
	for _, src := range []string{
		`params.ref == "main" && jobs.build.status == "success"`,
		`actions.read.outputs.stdout != "" && jobs["test"].outputs.anything == nil`,
		`trigger.payload.x.y == 1 || run.id != ""`,
		`jobs[params.ref].status == "x"`, // computed keys are checked when evaluated
	} {
		if err := Compile(src, scope); err != nil {
			t.Errorf("Compile(%s): %v", src, err)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{`params.rf == "main"`, `"params.rf == \"main\"": unknown name "rf" in params (did you mean "ref"?)`},
		{`jobs.buidl.status`, `"jobs.buidl.status": unknown name "buidl" in jobs (did you mean "build"?)`},
		{`actions.write.status`, `"actions.write.status": unknown name "write" in actions`},
		{`job.params.x`, `"job.params.x": unknown name "x" in job.params`},
		{`trigger.body`, `"trigger.body": unknown name "body" in trigger`},
		{`params.rf == jobs.tset.status`, `unknown name "rf" in params (did you mean "ref"?); unknown name "tset" in jobs (did you mean "test"?)`},
	} {
		err := Compile(tc.src, scope)
		if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%s) = %v; want %s", tc.src, err, tc.want)
		}
	}
	// Without a scope only the fixed names are checked.
	if err := Compile(`params.anything == jobs.any.status`, nil); err != nil {
		t.Errorf("Compile without scope: %v", err)
	}
}

func TestInterpolate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"no expressions", "no expressions"},
		{"built ${{ params.environment }} in run ${{ run.id }}", "built nonprod in run r-1"},
		{"${{params.list}} ${{ params.obj }}", `["a",2] {"k":"v"}`},
		{"${{ jobs.test.outputs.changed }}/${{ len(params.list) }}/${{ 1.5 }}", "true/2/1.5"},
		{"[${{ jobs.test.outputs.missing }}]", "[]"},
		{"${{ '}}' }} and ${{ \"${{\" }}", "}} and ${{"},
		{"${{ actions.version_match.outputs.groups[1] }}", "3.18.0"},
		{"a } b }} c", "a } b }} c"},
	} {
		got, err := Interpolate(tc.in, runContext)
		if err != nil || got != tc.want {
			t.Errorf("Interpolate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"x ${{ params.nope }} y", `${{ params.nope }}: unknown name "nope" in params`},
		{"${{ params.environment }} ${{ jobs.nope.status }}", `${{ jobs.nope.status }}: unknown name "nope" in jobs`},
		{"echo ${{ params.environment", `the ${{ at byte 5 has no closing }}`},
		{"${{ }}", `${{  }}: empty expression`},
	} {
		_, err := Interpolate(tc.in, runContext)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Interpolate(%q) error = %v; want %s", tc.in, err, tc.want)
		}
	}
}

func TestInterpolateAll(t *testing.T) {
	in := map[string]any{"binary": "${{ params.environment }}-tf", "n": int64(3), "list": []any{"${{ run.id }}", true}}
	got, err := InterpolateAll(in, runContext)
	want := map[string]any{"binary": "nonprod-tf", "n": int64(3), "list": []any{"r-1", true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("InterpolateAll = %#v, %v", got, err)
	}
	if in["binary"] != "${{ params.environment }}-tf" {
		t.Error("InterpolateAll changed its input")
	}
	_, err = InterpolateAll(map[string]any{"a": []any{"${{ params.x }}"}}, runContext)
	if err == nil || err.Error() != `a[0]: ${{ params.x }}: unknown name "x" in params` {
		t.Errorf("InterpolateAll error = %v", err)
	}
}

func TestContextMapShape(t *testing.T) {
	m := Context{Jobs: map[string]Result{"skipped": {Status: "skipped"}}}.Map()
	outputs := m["jobs"].(map[string]any)["skipped"].(map[string]any)["outputs"]
	if outputs == nil || len(outputs.(map[string]any)) != 0 {
		t.Errorf("a job without outputs has outputs %#v, want an empty map", outputs)
	}
	got, err := EvalMap(`jobs.skipped.outputs.x == nil && params == {}`, m)
	if err != nil || got != true {
		t.Errorf("EvalMap = %v, %v", got, err)
	}
}
