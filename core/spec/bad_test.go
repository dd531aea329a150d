package spec

import (
	"errors"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// header is the start of every bad pipeline below: lines 1-4.
const header = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: demo
`

func TestBadPipelines(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // after header, from line 5
		want []string
	}{
		{"unknown requires", `spec:
  jobs:
    - name: build
      actions: [{name: a, run: make}]
    - name: test
      requires: [buidl]
      actions: [{name: a, run: make test}]
`, []string{
			`pipeline.yaml:10: spec.jobs[1].requires[0]: unknown job "buidl" (did you mean "build"?)`,
		}},
		{"runs_on", `spec:
  jobs:
    - name: build
      runs_on: {gpu: true, "Bad Key": x, os: linux}
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:8: spec.jobs[0].runs_on.gpu: got boolean, want string`,
		}},
		{"runs_on name", `spec:
  jobs:
    - name: build
      runs_on: {"Bad Key": x, os: linux}
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:8: spec.jobs[0].runs_on.Bad Key: a label's name is 1 to 64 lowercase letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit`,
		}},
		{"cycle", `spec:
  jobs:
    - name: a
      requires: [c]
      actions: [{name: x, run: "true"}]
    - name: b
      requires: [a]
      actions: [{name: x, run: "true"}]
    - name: c
      requires: [b]
      actions: [{name: x, run: "true"}]
    - name: d
      requires: [d]
      actions: [{name: x, run: "true"}]
`, []string{
			"pipeline.yaml:11: spec.jobs[1].requires[0]: requires form a cycle: a -> c -> b -> a",
			`pipeline.yaml:17: spec.jobs[3].requires[0]: job "d" requires itself`,
		}},
		{"duplicates", `spec:
  params:
    - {name: ref, type: string}
    - {name: ref, type: string}
  triggers:
    - {type: interval, name: t, every: 1h}
    - {type: interval, name: t, every: 2h}
  jobs:
    - name: build
      actions:
        - {name: a, run: make}
        - {name: a, run: make}
    - name: build
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:8: spec.params[1].name: duplicate param name "ref" (first at index 0)`,
			`pipeline.yaml:11: spec.triggers[1].name: duplicate trigger name "t" (first at index 0)`,
			`pipeline.yaml:16: spec.jobs[0].actions[1].name: duplicate action name "a" (first at index 0)`,
			`pipeline.yaml:17: spec.jobs[1].name: duplicate job name "build" (first at index 0)`,
		}},
		{"bad names", `spec:
  params:
    - {name: Ref}
  jobs:
    - name: Build Job
      actions: [{name: "a.b", run: make}]
`, []string{
			`pipeline.yaml:7: spec.params[0].name: "Ref" is not a valid name (lowercase letters, digits, - and _, starting with a letter or digit)`,
			`pipeline.yaml:9: spec.jobs[0].name: "Build Job" is not a valid name (lowercase letters, digits, - and _, starting with a letter or digit)`,
			`pipeline.yaml:10: spec.jobs[0].actions[0].name: "a.b" is not a valid name (lowercase letters, digits, - and _, starting with a letter or digit)`,
		}},
		{"bad expressions", `spec:
  params:
    - {name: ref}
  jobs:
    - name: build
      if: params.rf == "main"
      actions:
        - name: a
          run: echo ${{ params.ref }} ${{ jobs.buld.status }}
        - name: b
          type: compare
          expr: actions.a.outputs.x ==
        - name: c
          if: actions.d.status == "success"
          run: echo ${{ params.ref
        - name: d
          run: echo ${{ repeat("x", 3) }}
`, []string{
			`pipeline.yaml:10: spec.jobs[0].if: "params.rf == \"main\"": unknown name "rf" in params (did you mean "ref"?)`,
			`pipeline.yaml:13: spec.jobs[0].actions[0].run: ${{ jobs.buld.status }}: unknown name "buld" in jobs (did you mean "build"?)`,
			`pipeline.yaml:16: spec.jobs[0].actions[1].expr: "actions.a.outputs.x ==": unexpected token EOF`,
			`pipeline.yaml:18: spec.jobs[0].actions[2].if: "actions.d.status == \"success\"": unknown name "d" in actions`,
			"pipeline.yaml:19: spec.jobs[0].actions[2].run: the ${{ at byte 5 has no closing }}",
			`pipeline.yaml:21: spec.jobs[0].actions[3].run: ${{ repeat("x", 3) }}: function repeat is not available`,
		}},
		{"unknown types", `spec:
  jobs:
    - name: build
      actions:
        - {name: a, type: mtach, pattern: x}
        - {name: b, type: slack/post, channel: x}
        - {name: c}
    - name: plan
      uses: terraform/plna
    - name: both
      uses: terraform/plan
      actions: [{name: a, run: make}]
    - name: none
`, []string{
			`pipeline.yaml:9: spec.jobs[0].actions[0].type: unknown action type "mtach" (did you mean "match"?)`,
			`pipeline.yaml:10: spec.jobs[0].actions[1].type: unknown action type "slack/post"`,
			"pipeline.yaml:11: spec.jobs[0].actions[2]: an action needs a type, or run for a run action",
			`pipeline.yaml:13: spec.jobs[1].uses: unknown job type "terraform/plna" (did you mean "terraform/plan"?)`,
			"pipeline.yaml:15: spec.jobs[2].uses: a job has either uses or actions, not both",
			"pipeline.yaml:17: spec.jobs[3]: a job needs actions or uses",
		}},
		{"fields of action types", `spec:
  jobs:
    - name: build
      actions:
        - {name: a, run: make, pattern: x}
        - {name: b, type: match, patern: x}
        - {name: c, type: match, pattern: "(["}
        - {name: d, type: compare}
`, []string{
			"pipeline.yaml:9: spec.jobs[0].actions[0].pattern: does not apply to a run action",
			"pipeline.yaml:10: spec.jobs[0].actions[1]: a match action needs pattern",
			`pipeline.yaml:10: spec.jobs[0].actions[1].patern: unknown field (did you mean "pattern"?)`,
			"pipeline.yaml:11: spec.jobs[0].actions[2].pattern: invalid regular expression: error parsing regexp: missing closing ]: `[`",
			"pipeline.yaml:12: spec.jobs[0].actions[3]: a compare action needs expr",
		}},
		{"params checked against the schemas of their types", `spec:
  params: [{name: re}]
  jobs:
    - name: build
      actions:
        - {name: a, run: make, workdir: 3}
        - {name: b, type: standard/match, pattern: "${{ params.re }}"}
        - {name: c, type: match, pattern: "${{ params.re }}(", input: x}
        - {name: d, type: run, run: "echo '${{ params.re }}'"}
        - {name: e, type: compare, expr: "len(params.re)"}
    - name: apply
      uses: terraform/apply
      with: {plan_job: "", vars: x, workspac: "${{ params.re }}", dir: "${{ params.re }}"}
    - name: approve
      uses: terraform/approve-if-changed
`, []string{
			"pipeline.yaml:10: spec.jobs[0].actions[0].workdir: got number, want string",
			`pipeline.yaml:13: spec.jobs[0].actions[3].run: ${{ params.re }} at byte 6 is inside single quotes: the value of an expression reaches a script through an environment variable, and a reference there would not be expanded; close the quotes around it ('...'"${{ ... }}"'...')`,
			"pipeline.yaml:14: spec.jobs[0].actions[4].expr: len(params.re) is a number, not true or false: compare it to something, such as len(params.re) == ...",
			"pipeline.yaml:17: spec.jobs[1].with.plan_job: must not be empty",
			"pipeline.yaml:17: spec.jobs[1].with.vars: got string, want object",
			`pipeline.yaml:17: spec.jobs[1].with.workspac: unknown field (did you mean "workspace"?)`,
			`pipeline.yaml:18: spec.jobs[2].with: missing field "plan_job"`,
		}},
		{"durations", `spec:
  timeout: 10 minutes
  jobs:
    - name: build
      timeout: 0s
      actions: [{name: a, run: make, timeout: 5x}]
`, []string{
			`pipeline.yaml:6: spec.timeout: "10 minutes" is not a duration (such as 90s, 10m or 1h30m)`,
			`pipeline.yaml:10: spec.jobs[0].actions[0].timeout: "5x" is not a duration (such as 90s, 10m or 1h30m)`,
		}},
		{"zero duration", `spec:
  jobs:
    - name: build
      timeout: 0s
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:8: spec.jobs[0].timeout: "0s" must be longer than zero`,
		}},
		{"triggers", `spec:
  params:
    - {name: ref}
  triggers:
    - {type: webhook, name: hook, params: {reff: "${{ trigger.payload.ref }}"}}
    - {type: interval, name: fast, every: 10s}
    - {type: interval, name: none}
    - {type: cron, name: nightly, expression: "0 25 * * *"}
    - {type: cron, name: tz, expression: "@daily", timezone: Mars/Olympus}
    - {type: cron, name: sec, expression: "@daily", secret: x}
  jobs:
    - name: build
      actions: [{name: a, run: make}]
`, []string{
			"pipeline.yaml:9: spec.triggers[0]: a webhook trigger needs a secret: {from_credential: NAME}",
			`pipeline.yaml:9: spec.triggers[0].params.reff: unknown param "reff" (did you mean "ref"?)`,
			"pipeline.yaml:10: spec.triggers[1].every: 10s is shorter than the minimum interval 1m0s",
			"pipeline.yaml:11: spec.triggers[2]: an interval trigger needs every (such as 10m)",
			`pipeline.yaml:12: spec.triggers[3].expression: invalid cron expression "0 25 * * *": end of range (25) above maximum (23): 25`,
			`pipeline.yaml:13: spec.triggers[4].timezone: unknown time zone "Mars/Olympus"`,
			"pipeline.yaml:14: spec.triggers[5].secret: does not apply to a cron trigger",
		}},
		{"param defaults", `spec:
  params:
    - {name: a, type: boolean, default: "yes"}
    - {name: b, type: number, default: "1"}
    - {name: c, type: list, default: x}
    - {name: d, type: object, default: [1]}
    - {name: e, type: string, default: 3}
    - {name: f, type: string, required: true, default: x}
  jobs:
    - name: build
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:7: spec.params[0].default: "yes" is not a boolean`,
			`pipeline.yaml:8: spec.params[1].default: "1" is not a number`,
			`pipeline.yaml:9: spec.params[2].default: "x" is not a list`,
			"pipeline.yaml:10: spec.params[3].default: a list is not an object",
			"pipeline.yaml:11: spec.params[4].default: 3 is not a string",
			"pipeline.yaml:12: spec.params[5].default: a required param has no default",
		}},
		{"schema", `spec:
  params: [{name: g, type: integer}]
  triggers: [{type: manual, name: m}]
  engine: 3
  jobs:
    - name: build
      requries: [x]
      when: sometimes
      retries: -1
      storage:
        get: [{path: a, scope: forever}, 7]
      actions: [{name: a, run: make, on_failure: retry}]
  extra: true
`, []string{
			`pipeline.yaml:6: spec.params[0].type: unknown value "integer" (want string, boolean, number, list or object)`,
			`pipeline.yaml:7: spec.triggers[0].type: unknown value "manual" (want webhook, interval or cron)`,
			"pipeline.yaml:8: spec.engine: got number, want string or object",
			"pipeline.yaml:11: spec.jobs[0].requries: unknown field",
			`pipeline.yaml:12: spec.jobs[0].when: unknown value "sometimes" (want success, failure or always)`,
			"pipeline.yaml:13: spec.jobs[0].retries: must be at least 0",
			`pipeline.yaml:15: spec.jobs[0].storage.get[0].scope: unknown value "forever" (want run or pipeline)`,
			"pipeline.yaml:15: spec.jobs[0].storage.get[1]: got number, want string or object",
			`pipeline.yaml:16: spec.jobs[0].actions[0].on_failure: unknown value "retry" (want continue, succeed or fail)`,
			"pipeline.yaml:17: spec.extra: unknown field",
		}},
		{"missing fields", `spec:
  jobs:
    - actions: [{run: make}]
`, []string{
			`pipeline.yaml:7: spec.jobs[0]: missing field "name"`,
			`pipeline.yaml:7: spec.jobs[0].actions[0]: missing field "name"`,
		}},
		{"yaml syntax", `spec:
  jobs: [
`, []string{
			"pipeline.yaml:6: did not find expected node content",
		}},
		{"duplicate key", `spec:
  jobs:
    - name: a
      name: b
      actions: [{name: a, run: make}]
`, []string{
			"pipeline.yaml:8: spec.jobs[0].name: duplicate key (first at line 7)",
		}},
		{"storage paths", `spec:
  jobs:
    - name: build
      storage:
        put: [/etc/passwd, ../up, {path: "a/../../b", scope: pipeline}]
      actions: [{name: a, run: make}]
`, []string{
			`pipeline.yaml:9: spec.jobs[0].storage.put[0]: "/etc/passwd" must be relative to the workspace`,
			`pipeline.yaml:9: spec.jobs[0].storage.put[1]: "../up" leaves the workspace`,
			`pipeline.yaml:9: spec.jobs[0].storage.put[2]: "a/../../b" leaves the workspace`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("pipeline.yaml", []byte(header+tc.yaml), knownTypes)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", header+tc.yaml)
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalid and sdk.ErrInvalidArgument", err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not Errors", err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
