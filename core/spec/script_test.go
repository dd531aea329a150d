package spec

import (
	"strings"
	"testing"
)

// A run script's ${{ }} that could not reach it through an environment
// variable is reported when the pipeline is applied.
func TestScriptExpressionsAtApply(t *testing.T) {
	_, err := Load("pipeline.yaml", []byte(header+`spec:
  params:
    - {name: ref, type: string}
  jobs:
    - name: build
      actions:
        - name: ok
          run: echo "${{ params.ref }}" ${{ params.ref }}
        - name: single
          run: echo '${{ params.ref }}'
        - name: python
          shell: python3
          run: print("${{ params.ref }}")
        - name: python-env
          shell: python3
          env: {REF: "${{ params.ref }}"}
          run: import os; print(os.environ["REF"])
        - name: arith
          run: echo $(( ${{ params.ref }} + 1 ))
`), knownTypes)
	if err == nil {
		t.Fatal("accepted")
	}
	got := err.Error()
	for _, want := range []string{
		`pipeline.yaml:14: spec.jobs[0].actions[1].run: ${{ params.ref }} at byte 6 is inside single quotes`,
		`pipeline.yaml:17: spec.jobs[0].actions[2].run: ${{ }} in a script run by "python3", which is not a POSIX shell`,
		`pipeline.yaml:23: spec.jobs[0].actions[4].run: ${{ params.ref }} at byte 9 is inside arithmetic`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 3 {
		t.Errorf("%d problems, want 3:\n%s", n, got)
	}
}
