package spec

import (
	"strings"
	"testing"
)

// A reference to an undeclared param is an error at apply, also in a
// pipeline that declares no params at all.
func TestUndeclaredParamWithoutParams(t *testing.T) {
	_, err := Load("p.yaml", []byte(header+`spec:
  jobs:
    - name: a
      if: params.deploy == true
      actions:
        - {name: s, run: "echo ${{ params.nope }}"}
`), knownTypes)
	got := ""
	if err != nil {
		got = err.Error()
	}
	for _, want := range []string{
		`p.yaml:8: spec.jobs[0].if: "params.deploy == true": unknown name "deploy" in params`,
		`p.yaml:10: spec.jobs[0].actions[0].run: ${{ params.nope }}: unknown name "nope" in params`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors:\n%s\nwant among them: %s", got, want)
		}
	}
}

// An if or a compare that cannot be true or false says so in words, on
// one line, at apply.
func TestNonBooleanConditions(t *testing.T) {
	_, err := Load("p.yaml", []byte(header+`spec:
  params:
    - {name: n, type: number, default: 1}
    - {name: s, type: string, default: "yes"}
    - {name: b, type: boolean, default: true}
  jobs:
    - name: a
      if: params.n + 1
      actions:
        - {name: c, type: compare, expr: "params.n * 2"}
        - name: d
          type: compare
          expr: |
            params.n
              + 1
        - {name: e, run: "true", if: params.s}
        - {name: f, type: compare, expr: 'params.s + "x"'}
        - {name: g, type: compare, expr: "len(params.s)"}
        - {name: ok1, type: compare, expr: "params.n * 2 == 2"}
        - {name: ok2, run: "true", if: params.b}
        - {name: ok3, run: "true", if: "params.s == 'yes' && params.b"}
`), knownTypes)
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		"p.yaml:12: spec.jobs[0].if: params.n + 1 is a number, not true or false",
		"p.yaml:14: spec.jobs[0].actions[0].expr: params.n * 2 is a number, not true or false",
		"p.yaml:17: spec.jobs[0].actions[1].expr: params.n + 1 is a number, not true or false",
		"p.yaml:20: spec.jobs[0].actions[2].if: params.s is param s, a string, not true or false",
		`p.yaml:21: spec.jobs[0].actions[3].expr: params.s + "x" is a string, not true or false`,
		"p.yaml:22: spec.jobs[0].actions[4].expr: len(params.s) is a number, not true or false",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors:\n%s\nwant among them: %s", got, want)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 6 {
		t.Errorf("%d errors, want 6 (none about ok1, ok2, ok3):\n%s", n, got)
	}
	if strings.Contains(got, "^") || strings.Contains(got, "bool(") {
		t.Errorf("expr-lang's internals in the errors:\n%s", got)
	}
}
