// Package terraform is the first-party job plugin for Terraform: the job
// types plan, approve-if-changed and apply, which together hold a deploy
// for approval only when its plan has changes.
//
//   - name: terraform-nonprod-plan
//     uses: terraform/plan
//     with: {account: project1, environment: nonprod}
//   - name: terraform-nonprod-approve
//     uses: terraform/approve-if-changed
//     with: {plan_job: terraform-nonprod-plan}
//   - name: terraform-nonprod-apply
//     uses: terraform/apply
//     with: {plan_job: terraform-nonprod-plan}
//
// plan runs `terraform plan -detailed-exitcode` and sets the job output
// changed (true or false); it keeps the plan file in run storage under
// "<job name>/tfplan". approve-if-changed is an approval that runs only if
// the plan job's changed output is true. apply fetches the plan file and
// applies exactly that plan.
package terraform

import (
	"context"
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
const Version = "0.1.0"

// DefaultBinary is the terraform command used when `with` names none.
const DefaultBinary = "terraform"

// PlanFile is the plan file's path in the workspace.
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

// arg is one `with` argument of a job type.
type arg struct {
	name        string
	required    bool
	description string
}

var (
	argAccount     = arg{"account", true, "The account (or project) to deploy to; passed as -var account=..."}
	argEnvironment = arg{"environment", true, "The environment; passed as -var environment=..."}
	argBinary      = arg{"binary", false, `The terraform command (default "terraform"), a name on PATH or a path.`}
	argPlanJob     = arg{"plan_job", true, "The name of the job of type plan whose plan this job approves or applies."}
	argMessage     = arg{"message", false, "What the approver is asked."}
)

type jobType struct {
	description string
	args        []arg
	example     map[string]any
	expand      func(req *job.ExpandRequest, with map[string]string) *job.ExpandResponse
}

var types = map[string]jobType{
	"plan": {
		description: "Run terraform plan -detailed-exitcode; output changed (true/false); keep the plan file in run storage as <job name>/tfplan.",
		args:        []arg{argAccount, argEnvironment, argBinary},
		example:     map[string]any{"account": "project1", "environment": "nonprod"},
		expand:      expandPlan,
	},
	"approve-if-changed": {
		description: "Wait for approval if the plan job's plan has changes; skipped otherwise.",
		args:        []arg{argPlanJob, argMessage},
		example:     map[string]any{"plan_job": "terraform-nonprod-plan"},
		expand:      expandApprove,
	},
	"apply": {
		description: "Apply the plan file of the plan job.",
		// account and environment are accepted so a pipeline can pass the
		// same arguments to every job; the saved plan already holds them.
		args:    []arg{argPlanJob, {"account", false, argAccount.description}, {"environment", false, argEnvironment.description}, argBinary},
		example: map[string]any{"plan_job": "terraform-nonprod-plan", "account": "project1", "environment": "nonprod"},
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
		Description:      "Terraform job types: plan, approve-if-changed, apply.",
		Categories:       []sdk.Category{sdk.CategoryJob},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema:     map[string]any{"type": "object", "properties": map[string]any{}, "additionalProperties": false},
	}
	for _, n := range typeNames() {
		t := types[n]
		props := map[string]any{}
		var required []any
		for _, a := range t.args {
			props[a.name] = map[string]any{"type": "string", "minLength": 1, "description": a.description}
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

// readArgs checks `with` against a type's arguments: every argument is a
// non-empty string, required ones are present, and no other is given.
func readArgs(args []arg, with map[string]any) (map[string]string, error) {
	known := map[string]bool{}
	out := map[string]string{}
	for _, a := range args {
		known[a.name] = true
		v, ok := with[a.name]
		if !ok || v == nil {
			if a.required {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+a.name, "is required")
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+a.name, "must be a string, not %T", v)
		}
		if strings.TrimSpace(s) == "" {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+a.name, "is empty")
		}
		if strings.ContainsAny(s, "\x00\n\r") {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with."+a.name, "must be a single line")
		}
		out[a.name] = s
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
	if pj, ok := out["plan_job"]; ok && !jobName.MatchString(pj) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "with.plan_job", "%q is not a job name", pj)
	}
	return out, nil
}

func binary(with map[string]string) string {
	if b := with["binary"]; b != "" {
		return b
	}
	return DefaultBinary
}

// planScript maps terraform's -detailed-exitcode (0 no changes, 1 error,
// 2 changes) to the changed output and the script's exit code.
func planScript(bin, environment, account string) string {
	return fmt.Sprintf(`rc=0
%s plan -detailed-exitcode -var %s -var %s -out %s || rc=$?
case "$rc" in
  0) echo "changed=false" >> "$PALVELLA_OUTPUT" ;;
  2) echo "changed=true" >> "$PALVELLA_OUTPUT" ;;
  *) echo "terraform plan failed with exit code $rc" >&2; exit "$rc" ;;
esac
`, shellQuote(bin), shellQuote("environment="+environment), shellQuote("account="+account), PlanFile)
}

func applyScript(bin, planJob string) string {
	return fmt.Sprintf(`if [ ! -f %[2]s ]; then
  echo %[3]s >&2
  exit 1
fi
%[1]s apply %[2]s
`, shellQuote(bin), PlanFile, shellQuote(fmt.Sprintf("no plan file: job %s did not store one in this run", planJob)))
}

func planKey(job string) string { return job + "/" + PlanFile }

func expandPlan(req *job.ExpandRequest, with map[string]string) *job.ExpandResponse {
	return &job.ExpandResponse{
		Actions: []job.ActionSpec{{
			Name:   "plan",
			Type:   "run",
			Params: map[string]any{"run": planScript(binary(with), with["environment"], with["account"])},
		}},
		StoragePut: []job.StorageEntry{{Path: PlanFile, Scope: job.ScopeRun, Key: planKey(req.JobName)}},
	}
}

// ChangedCondition is the `if` of the approval: true when the plan job's
// changed output is true.
func ChangedCondition(planJob string) string {
	return fmt.Sprintf("jobs[%s].outputs.changed == true", strconv.Quote(planJob))
}

func expandApprove(_ *job.ExpandRequest, with map[string]string) *job.ExpandResponse {
	msg := with["message"]
	if msg == "" {
		msg = fmt.Sprintf("The plan of %s has changes. Approve to apply them.", with["plan_job"])
	}
	return &job.ExpandResponse{
		Actions: []job.ActionSpec{{
			Name:   "approve",
			Type:   "approval",
			Params: map[string]any{"message": msg},
			If:     ChangedCondition(with["plan_job"]),
		}},
	}
}

func expandApply(_ *job.ExpandRequest, with map[string]string) *job.ExpandResponse {
	return &job.ExpandResponse{
		StorageGet: []job.StorageEntry{{Path: PlanFile, Scope: job.ScopeRun, Key: planKey(with["plan_job"])}},
		Actions: []job.ActionSpec{{
			Name:   "apply",
			Type:   "run",
			Params: map[string]any{"run": applyScript(binary(with), with["plan_job"])},
		}},
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func typeNames() []string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
