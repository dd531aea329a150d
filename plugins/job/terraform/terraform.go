// Package terraform is the first-party job plugin for Terraform and
// OpenTofu: the job types plan, approve-if-changed and apply, which together
// hold a deploy for approval only when its plan has changes.
//
//   - name: checkout
//     actions: [...]                       # writes infra/main.tf
//     storage: {put: [infra/main.tf]}
//   - name: plan
//     requires: [checkout]
//     storage: {get: [infra/main.tf]}
//     uses: terraform/plan
//     with:
//     dir: infra
//     workspace: prod
//     vars: {environment: prod, replicas: 3}
//     backend_config: {bucket: my-state, key: app.tfstate}
//   - name: approve
//     requires: [plan]
//     uses: terraform/approve-if-changed
//     with: {plan_job: plan}
//   - name: apply
//     requires: [approve]
//     storage: {get: [infra/main.tf]}
//     uses: terraform/apply
//     with: {plan_job: plan, dir: infra, workspace: prod, backend_config: {bucket: my-state, key: app.tfstate}}
//
// plan runs, in the configuration folder dir, `init -input=false` (with the
// backend configuration and -reconfigure when asked), selects the
// workspace (creating it if needed), then `plan -input=false
// -detailed-exitcode`, and sets the job output changed (true or false); it
// keeps the plan file in run storage under "<job name>/tfplan".
// approve-if-changed is an approval that runs only if the plan job's changed
// output is true. apply initializes the same folder the same way and
// applies exactly the stored plan.
//
// Variables (vars) reach terraform in a generated JSON var-file, and every
// argument reaches the scripts through environment variables: nothing a
// pipeline passes is pasted into a command line or a script's text. The
// older arguments account and environment are still passed as `-var
// account=...` and `-var environment=...`, so a configuration given them
// must declare those variables.
package terraform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/job"
)

// Name is the plugin's name.
const Name = "job-terraform"

// Version is the plugin's version.
const Version = "0.2.0"

// DefaultBinaries are the commands tried, in order, on the PATH when `with`
// names no binary.
var DefaultBinaries = []string{"terraform", "tofu"}

// PlanFile is the plan file's path in the workspace (not in dir).
const PlanFile = "tfplan"

// Plugin implements the terraform job types.
type Plugin struct{}

var (
	_ sdk.Plugin = (*Plugin)(nil)
	_ job.Job    = (*Plugin)(nil)
)

// New returns the plugin. It has no configuration.
func New() *Plugin { return &Plugin{} }

// Serve runs the plugin as a go-plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{job.Service(p)}, opts...)
}

// kind is what an argument's value may be.
type kind int

const (
	kindString         kind = iota // a non-empty single-line string
	kindBool                       // true or false (or the strings "true", "false")
	kindObject                     // an object of names to values
	kindObjectOrString             // an object, or a string (a file's path)
)

// arg is one `with` argument of a job type.
type arg struct {
	name        string
	required    bool
	kind        kind
	description string
}

func (a arg) schema() map[string]any {
	var s map[string]any
	switch a.kind {
	case kindBool:
		s = map[string]any{"type": []any{"boolean", "string"}, "enum": []any{true, false, "true", "false"}}
	case kindObject:
		s = map[string]any{"type": "object"}
	case kindObjectOrString:
		s = map[string]any{"type": []any{"object", "string"}}
	default:
		s = map[string]any{"type": "string", "minLength": 1}
	}
	s["description"] = a.description
	return s
}

var (
	argDir           = arg{"dir", false, kindString, `The folder of the configuration, relative to the job's workspace (where a checkout or a storage get put it) or absolute; default the workspace itself.`}
	argVars          = arg{"vars", false, kindObject, "Input variables, name to value (strings, numbers, booleans, lists, objects); passed in a generated JSON var-file, never on a command line."}
	argWorkspace     = arg{"workspace", false, kindString, "The workspace to select after init; created when it does not exist. Default: the default workspace."}
	argBackendConfig = arg{"backend_config", false, kindObjectOrString, "Backend configuration for init: an object of settings (passed in a generated JSON file), or the path of a backend configuration file relative to dir."}
	argReconfigure   = arg{"reconfigure", false, kindBool, "Run init with -reconfigure, ignoring any saved backend configuration."}
	argBinary        = arg{"binary", false, kindString, `The terraform command, a name on PATH or a path; default "terraform", or "tofu" when terraform is not on the PATH.`}
	argAccount       = arg{"account", false, kindString, "Older argument: passed as -var account=..., so the configuration must declare the variable account. Prefer vars."}
	argEnvironment   = arg{"environment", false, kindString, "Older argument: passed as -var environment=..., so the configuration must declare the variable environment. Prefer vars."}
	argPlanJob       = arg{"plan_job", true, kindString, "The name of the job of type plan whose plan this job approves or applies."}
	argMessage       = arg{"message", false, kindString, "What the approver is asked."}
)

type jobType struct {
	description string
	args        []arg
	example     map[string]any
	expand      func(req *job.ExpandRequest, with map[string]any) *job.ExpandResponse
}

var types = map[string]jobType{
	"plan": {
		description: "In dir: init -input=false, select the workspace, plan -detailed-exitcode; output changed (true/false); keep the plan file in run storage as <job name>/tfplan.",
		args:        []arg{argDir, argVars, argWorkspace, argBackendConfig, argReconfigure, argBinary, argAccount, argEnvironment},
		example:     map[string]any{"dir": "infra", "workspace": "prod", "vars": map[string]any{"environment": "prod"}},
		expand:      expandPlan,
	},
	"approve-if-changed": {
		description: "Wait for approval if the plan job's plan has changes; skipped otherwise.",
		args:        []arg{argPlanJob, argMessage},
		example:     map[string]any{"plan_job": "terraform-nonprod-plan"},
		expand:      expandApprove,
	},
	"apply": {
		description: "In dir: init -input=false, select the workspace, and apply the plan file of the plan job.",
		// vars, account and environment are accepted so a pipeline can pass
		// the same arguments to every job; the saved plan already holds them.
		args: []arg{argPlanJob, argDir, argWorkspace, argBackendConfig, argReconfigure, argBinary,
			{"vars", false, kindObject, "Accepted and not used: the saved plan holds its variables."},
			{"account", false, kindString, "Accepted and not used: the saved plan holds its variables."},
			{"environment", false, kindString, "Accepted and not used: the saved plan holds its variables."}},
		example: map[string]any{"plan_job": "terraform-nonprod-plan", "dir": "infra", "workspace": "prod"},
		expand:  expandApply,
	},
}

// jobName is what a plan_job must look like: a pipeline's job name.
var jobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	m := &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Terraform and OpenTofu job types: plan, approve-if-changed, apply.",
		Categories:       []sdk.Category{sdk.CategoryJob},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema:     map[string]any{"type": "object", "properties": map[string]any{}, "additionalProperties": false},
	}
	for _, n := range typeNames() {
		t := types[n]
		props := map[string]any{}
		var required []any
		for _, a := range t.args {
			props[a.name] = a.schema()
			if a.required {
				required = append(required, a.name)
			}
		}
		schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false, "examples": []any{t.example}}
		if len(required) > 0 {
			schema["required"] = required
		}
		m.Types = append(m.Types, sdk.TypeInfo{Category: sdk.CategoryJob, Name: n, Description: t.description, ParamsSchema: schema})
	}
	return m, nil
}

// Configure accepts only an empty configuration.
func (p *Plugin) Configure(_ context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	var diags []sdk.Diagnostic
	for k := range req.Config {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: fmt.Sprintf("unknown setting %q: this plugin has no configuration", k), Field: "config." + k})
	}
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

// Expand turns one job of the plugin's types into actions.
func (p *Plugin) Expand(ctx context.Context, req *job.ExpandRequest) (*job.ExpandResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "request", "no expand request")
	}
	t, ok := types[req.Type]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "type", "unknown job type %q (this plugin provides %s)", req.Type, strings.Join(typeNames(), ", "))
	}
	if !jobName.MatchString(req.JobName) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "job_name", "job name %q is not a valid job name", req.JobName)
	}
	with, err := readArgs(t.args, req.With)
	if err != nil {
		return nil, err
	}
	return t.expand(req, with), nil
}

// readArgs checks `with` against a type's arguments: each has its kind,
// required ones are present, and no other is given. Strings come back as
// strings, booleans as bools, objects as map[string]any.
func readArgs(args []arg, with map[string]any) (map[string]any, error) {
	known := map[string]bool{}
	out := map[string]any{}
	for _, a := range args {
		known[a.name] = true
		v, ok := with[a.name]
		if !ok || v == nil {
			if a.required {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+a.name, "is required")
			}
			continue
		}
		field := "with." + a.name
		switch a.kind {
		case kindBool:
			switch x := v.(type) {
			case bool:
				out[a.name] = x
			case string:
				b, err := strconv.ParseBool(strings.TrimSpace(x))
				if err != nil {
					return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "must be true or false, not %q", x)
				}
				out[a.name] = b
			default:
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "must be true or false, not %s", jsonType(v))
			}
		case kindObject:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "must be an object of names to values, not %s", jsonType(v))
			}
			for k := range m {
				if k == "" {
					return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "has an empty name")
				}
			}
			out[a.name] = m
		case kindObjectOrString:
			if m, ok := v.(map[string]any); ok {
				out[a.name] = m
				continue
			}
			s, err := singleLine(field, v, "an object, or a file's path")
			if err != nil {
				return nil, err
			}
			out[a.name] = s
		default:
			s, err := singleLine(field, v, "a string")
			if err != nil {
				return nil, err
			}
			out[a.name] = s
		}
	}
	names := make([]string, 0, len(with))
	for k := range with {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known[k] {
			var allowed []string
			for _, a := range args {
				allowed = append(allowed, a.name)
			}
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+k, "unknown argument %q (this job type takes %s)", k, strings.Join(allowed, ", "))
		}
	}
	if pj, ok := out["plan_job"].(string); ok && !jobName.MatchString(pj) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with.plan_job", "%q is not a job name", pj)
	}
	return out, nil
}

func singleLine(field string, v any, want string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "must be %s, not %s", want, jsonType(v))
	}
	if strings.TrimSpace(s) == "" {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "is empty")
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "must be a single line")
	}
	return s, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int64, int32:
		return "a number"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// The environment variables through which the scripts get their inputs.
const (
	envBinary        = "PALVELLA_TF_BINARY"
	envDir           = "PALVELLA_TF_DIR"
	envWorkspace     = "PALVELLA_TF_WORKSPACE"
	envBackendJSON   = "PALVELLA_TF_BACKEND_CONFIG_JSON"
	envBackendFile   = "PALVELLA_TF_BACKEND_CONFIG_FILE"
	envReconfigure   = "PALVELLA_TF_RECONFIGURE"
	envVarsJSON      = "PALVELLA_TF_VARS_JSON"
	envAccount       = "PALVELLA_TF_ACCOUNT"
	envEnvironment   = "PALVELLA_TF_ENVIRONMENT"
	envPlanJob       = "PALVELLA_TF_PLAN_JOB"
	envPlanFile      = "PALVELLA_TF_PLAN_FILE"
	envBinaryDefault = "PALVELLA_TF_DEFAULT_BINARIES"
)

// prelude is the start of the plan and apply scripts: it finds the binary,
// enters the configuration folder and runs init and workspace selection.
// Every input comes from the environment.
const prelude = `ws=$(pwd)
tf=${PALVELLA_TF_BINARY:-}
if [ -z "$tf" ]; then
  for c in $PALVELLA_TF_DEFAULT_BINARIES; do
    if command -v "$c" >/dev/null 2>&1; then tf=$c; break; fi
  done
  if [ -z "$tf" ]; then
    echo "neither terraform nor tofu is on the PATH: install one, or name the command with the job's binary argument" >&2
    exit 127
  fi
fi
if [ -n "${PALVELLA_TF_DIR:-}" ]; then
  if [ ! -d "$PALVELLA_TF_DIR" ]; then
    echo "the configuration folder $PALVELLA_TF_DIR is not in the workspace: fetch it first (a checkout, or the job's storage get)" >&2
    exit 1
  fi
  cd -- "$PALVELLA_TF_DIR"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TF_INPUT=0 TF_IN_AUTOMATION=1
# Logs are read as text: no colour codes from the commands that take -no-color.
export TF_CLI_ARGS_init=-no-color TF_CLI_ARGS_plan=-no-color TF_CLI_ARGS_apply=-no-color
has_config=false
for f in *.tf *.tf.json *.tofu *.tofu.json; do
  if [ -e "$f" ]; then has_config=true; break; fi
done
if [ "$has_config" = true ]; then
  set -- -input=false
  if [ "${PALVELLA_TF_RECONFIGURE:-}" = true ]; then set -- "$@" -reconfigure; fi
  if [ -n "${PALVELLA_TF_BACKEND_CONFIG_JSON:-}" ]; then
    printf '%s\n' "$PALVELLA_TF_BACKEND_CONFIG_JSON" > "$tmp/backend.json"
    set -- "$@" "-backend-config=$tmp/backend.json"
  fi
  if [ -n "${PALVELLA_TF_BACKEND_CONFIG_FILE:-}" ]; then set -- "$@" "-backend-config=$PALVELLA_TF_BACKEND_CONFIG_FILE"; fi
  echo "+ $tf init $*"
  "$tf" init "$@"
else
  echo "no configuration files (*.tf, *.tf.json, *.tofu) in $(pwd): init not run" >&2
fi
if [ -n "${PALVELLA_TF_WORKSPACE:-}" ]; then
  echo "+ $tf workspace select -or-create $PALVELLA_TF_WORKSPACE"
  "$tf" workspace select -or-create "$PALVELLA_TF_WORKSPACE"
fi
`

// planScript maps terraform's -detailed-exitcode (0 no changes, 1 error,
// 2 changes) to the changed output and the script's exit code.
const planScript = prelude + `set -- -input=false -detailed-exitcode -out "$ws/$PALVELLA_TF_PLAN_FILE"
if [ -n "${PALVELLA_TF_VARS_JSON:-}" ]; then
  printf '%s\n' "$PALVELLA_TF_VARS_JSON" > "$tmp/palvella.tfvars.json"
  set -- "$@" "-var-file=$tmp/palvella.tfvars.json"
fi
if [ -n "${PALVELLA_TF_ENVIRONMENT:-}" ]; then set -- "$@" -var "environment=$PALVELLA_TF_ENVIRONMENT"; fi
if [ -n "${PALVELLA_TF_ACCOUNT:-}" ]; then set -- "$@" -var "account=$PALVELLA_TF_ACCOUNT"; fi
echo "+ $tf plan -input=false -detailed-exitcode -out $PALVELLA_TF_PLAN_FILE"
rc=0
"$tf" plan "$@" || rc=$?
case "$rc" in
  0) echo "changed=false" >> "$PALVELLA_OUTPUT" ;;
  2) echo "changed=true" >> "$PALVELLA_OUTPUT" ;;
  *) echo "$tf plan failed with exit code $rc" >&2; exit "$rc" ;;
esac
`

// applyScript applies the stored plan; TF_INPUT=0 (set by the prelude)
// keeps it from asking anything.
const applyScript = `if [ ! -f "$PALVELLA_TF_PLAN_FILE" ]; then
  echo "no plan file: job $PALVELLA_TF_PLAN_JOB did not store one in this run" >&2
  exit 1
fi
` + prelude + `echo "+ $tf apply $PALVELLA_TF_PLAN_FILE"
"$tf" apply "$ws/$PALVELLA_TF_PLAN_FILE"
`

// scriptEnv is the environment of a plan or apply script.
func scriptEnv(with map[string]any) map[string]any {
	env := map[string]any{
		envBinaryDefault: strings.Join(DefaultBinaries, " "),
		envPlanFile:      PlanFile,
	}
	for name, key := range map[string]string{"binary": envBinary, "dir": envDir, "workspace": envWorkspace} {
		if s, ok := with[name].(string); ok {
			env[key] = s
		}
	}
	switch bc := with["backend_config"].(type) {
	case map[string]any:
		env[envBackendJSON] = jsonText(bc)
	case string:
		env[envBackendFile] = bc
	}
	if r, _ := with["reconfigure"].(bool); r {
		env[envReconfigure] = "true"
	}
	return env
}

// jsonText is v as JSON with every $ written \u0024, so that no ${{ in a
// value is taken for an expression when the core interpolates the action's
// parameters.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Values came over the wire as JSON; they encode.
		panic(err)
	}
	return strings.ReplaceAll(strings.TrimSpace(b.String()), "$", `\u0024`)
}

// literal keeps s as it is through the core's ${{ }} interpolation of the
// action's parameters (s is an argument value, already interpolated).
func literal(s string) string {
	return strings.ReplaceAll(s, "${{", `${{ "${{" }}`)
}

func literalEnv(env map[string]any) map[string]any {
	for k, v := range env {
		if s, ok := v.(string); ok {
			env[k] = literal(s)
		}
	}
	return env
}

func planKey(job string) string { return job + "/" + PlanFile }

func expandPlan(req *job.ExpandRequest, with map[string]any) *job.ExpandResponse {
	env := scriptEnv(with)
	if vars, ok := with["vars"].(map[string]any); ok {
		env[envVarsJSON] = jsonText(vars)
	}
	if s, ok := with["account"].(string); ok {
		env[envAccount] = s
	}
	if s, ok := with["environment"].(string); ok {
		env[envEnvironment] = s
	}
	return &job.ExpandResponse{
		Actions: []job.ActionSpec{{
			Name:   "plan",
			Type:   "run",
			Params: map[string]any{"run": planScript, "env": literalEnv(env)},
		}},
		StoragePut: []job.StorageEntry{{Path: PlanFile, Scope: job.ScopeRun, Key: planKey(req.JobName)}},
	}
}

// ChangedCondition is the `if` of the approval: true when the plan job's
// changed output is true.
func ChangedCondition(planJob string) string {
	return fmt.Sprintf("jobs[%s].outputs.changed == true", strconv.Quote(planJob))
}

func expandApprove(_ *job.ExpandRequest, with map[string]any) *job.ExpandResponse {
	planJob := with["plan_job"].(string)
	msg, _ := with["message"].(string)
	if msg == "" {
		msg = fmt.Sprintf("The plan of %s has changes. Approve to apply them.", planJob)
	}
	return &job.ExpandResponse{
		Actions: []job.ActionSpec{{
			Name:   "approve",
			Type:   "approval",
			Params: map[string]any{"message": literal(msg)},
			If:     ChangedCondition(planJob),
		}},
	}
}

func expandApply(_ *job.ExpandRequest, with map[string]any) *job.ExpandResponse {
	planJob := with["plan_job"].(string)
	env := scriptEnv(with)
	env[envPlanJob] = planJob
	return &job.ExpandResponse{
		StorageGet: []job.StorageEntry{{Path: PlanFile, Scope: job.ScopeRun, Key: planKey(planJob)}},
		Actions: []job.ActionSpec{{
			Name:   "apply",
			Type:   "run",
			Params: map[string]any{"run": applyScript, "env": literalEnv(env)},
		}},
	}
}

func typeNames() []string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
