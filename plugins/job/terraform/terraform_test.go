package terraform

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) job.Job {
		p := New()
		if _, err := p.Configure(context.Background(), &sdk.ConfigureRequest{}); err != nil {
			t.Fatalf("Configure: %v", err)
		}
		return p
	}, job.Service, sdktest.JobSuite)
}

// expand expands one job over gRPC, as the core sees the plugin.
func expand(t *testing.T, typ, name string, with map[string]any) *job.ExpandResponse {
	t.Helper()
	client := sdktest.OverGRPC[job.Job](t, New(), job.Service)
	resp, err := client.Expand(context.Background(), &job.ExpandRequest{Type: typ, JobName: name, With: with})
	if err != nil {
		t.Fatalf("Expand(%s): %v", typ, err)
	}
	if len(resp.Actions) != 1 {
		t.Fatalf("Expand(%s) returned %d actions, want 1", typ, len(resp.Actions))
	}
	return resp
}

// stub copies the terraform stand-in to a path with a space and a quote,
// so the scripts' quoting is exercised too.
func stub(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "terraform-stub.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "my tools", "it's")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "terraform")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runScript runs an expanded run action's script as the local engine does
// (sh -e -c) in workspace, with $PALVELLA_OUTPUT, and returns the exit
// code, the output and the outputs file.
func runScript(t *testing.T, a job.ActionSpec, workspace string) (int, string, string) {
	t.Helper()
	if a.Type != "run" {
		t.Fatalf("action %q has type %q, want run", a.Name, a.Type)
	}
	script, _ := a.Params["run"].(string)
	outputs := filepath.Join(t.TempDir(), "outputs")
	if err := os.WriteFile(outputs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir = workspace
	cmd.Env = append(os.Environ(), "PALVELLA_OUTPUT="+outputs)
	out, err := cmd.CombinedOutput()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", a.Name, err)
	}
	b, err := os.ReadFile(outputs)
	if err != nil {
		t.Fatal(err)
	}
	return code, string(out), string(b)
}

func TestPlanApproveApply(t *testing.T) {
	bin := stub(t)
	for _, tc := range []struct {
		environment string
		wantOutputs string
		wantApprove bool
	}{
		{"nonprod", "changed=false\n", false},
		{"prod", "changed=true\n", true},
	} {
		t.Run(tc.environment, func(t *testing.T) {
			planJob := "terraform-" + tc.environment + "-plan"

			plan := expand(t, "plan", planJob, map[string]any{"account": "project1", "environment": tc.environment, "binary": bin})
			if len(plan.StoragePut) != 1 || plan.StoragePut[0] != (job.StorageEntry{Path: "tfplan", Scope: "run", Key: planJob + "/tfplan"}) {
				t.Fatalf("plan storage put = %+v, want tfplan under %s/tfplan", plan.StoragePut, planJob)
			}
			planDir := t.TempDir()
			code, out, outputs := runScript(t, plan.Actions[0], planDir)
			if code != 0 || outputs != tc.wantOutputs {
				t.Fatalf("plan script: exit %d, outputs %q, output:\n%s\nwant exit 0 and %q", code, outputs, out, tc.wantOutputs)
			}
			planFile, err := os.ReadFile(filepath.Join(planDir, "tfplan"))
			if err != nil || !strings.Contains(string(planFile), "plan for "+tc.environment) {
				t.Fatalf("plan file = %q, %v", planFile, err)
			}

			approve := expand(t, "approve-if-changed", "terraform-"+tc.environment+"-approve", map[string]any{"plan_job": planJob})
			a := approve.Actions[0]
			if a.Type != "approval" || a.Params["message"] == "" {
				t.Fatalf("approve action = %+v, want an approval with a message", a)
			}
			// The core evaluates `if` with jobs' outputs merged from their
			// actions' outputs; changed comes from the plan's outputs file.
			env := map[string]any{"jobs": map[string]any{planJob: map[string]any{"status": "success", "outputs": map[string]any{"changed": tc.wantApprove}}}}
			got, err := expr.Eval(a.If, env)
			if err != nil || got != tc.wantApprove {
				t.Fatalf("approval if %q = %v, %v; want %v", a.If, got, err, tc.wantApprove)
			}

			apply := expand(t, "apply", "terraform-"+tc.environment+"-apply", map[string]any{"account": "project1", "environment": tc.environment, "plan_job": planJob, "binary": bin})
			if len(apply.StorageGet) != 1 || apply.StorageGet[0].Key != planJob+"/tfplan" || apply.StorageGet[0].Path != "tfplan" {
				t.Fatalf("apply storage get = %+v, want %s/tfplan to tfplan", apply.StorageGet, planJob)
			}
			// What storage get does: the plan job's file at the entry's path.
			applyDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(applyDir, apply.StorageGet[0].Path), planFile, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, _ = runScript(t, apply.Actions[0], applyDir)
			if code != 0 || !strings.Contains(out, "Applying plan for "+tc.environment) || !strings.Contains(out, "Apply complete!") {
				t.Fatalf("apply script: exit %d, output:\n%s", code, out)
			}

			// A storage get of a key never stored leaves the path absent.
			code, out, _ = runScript(t, apply.Actions[0], t.TempDir())
			if code == 0 || !strings.Contains(out, planJob) {
				t.Fatalf("apply without a plan file: exit %d, output %q; want a failure naming %s", code, out, planJob)
			}
		})
	}
}

func TestPlanFailureFailsTheScript(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "terraform")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'Error: invalid configuration' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plan := expand(t, "plan", "p", map[string]any{"account": "a", "environment": "e", "binary": bin})
	code, out, outputs := runScript(t, plan.Actions[0], t.TempDir())
	if code != 1 || outputs != "" || !strings.Contains(out, "exit code 1") {
		t.Fatalf("failing plan: exit %d, outputs %q, output %q; want exit 1 and no changed output", code, outputs, out)
	}
}

func TestDefaultBinary(t *testing.T) {
	plan := expand(t, "plan", "p", map[string]any{"account": "a", "environment": "e"})
	if script := plan.Actions[0].Params["run"].(string); !strings.Contains(script, "'terraform' plan -detailed-exitcode -var 'environment=e' -var 'account=a' -out tfplan") {
		t.Fatalf("plan script does not run the default binary as documented:\n%s", script)
	}
}

func TestBadArguments(t *testing.T) {
	p := New()
	ctx := context.Background()
	for _, tc := range []struct {
		typ   string
		with  map[string]any
		field string
	}{
		{"plan", map[string]any{"environment": "prod"}, "with.account"},
		{"plan", map[string]any{"account": "project1"}, "with.environment"},
		{"plan", map[string]any{"account": "project1", "environment": " "}, "with.environment"},
		{"plan", map[string]any{"account": "project1", "environment": "prod", "enviroment": "prod"}, "with.enviroment"},
		{"plan", map[string]any{"account": 7.0, "environment": "prod"}, "with.account"},
		{"plan", map[string]any{"account": "a\nb", "environment": "prod"}, "with.account"},
		{"approve-if-changed", map[string]any{}, "with.plan_job"},
		{"approve-if-changed", map[string]any{"plan_job": `x"] || true || jobs["`}, "with.plan_job"},
		{"apply", map[string]any{"account": "project1", "environment": "prod"}, "with.plan_job"},
		{"destroy", map[string]any{}, "type"},
	} {
		_, err := p.Expand(ctx, &job.ExpandRequest{Type: tc.typ, JobName: "j", With: tc.with})
		var typed *sdk.Error
		if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != tc.field {
			t.Errorf("Expand(%s, %v): error = %v, want ErrInvalidArgument about %s", tc.typ, tc.with, err, tc.field)
		}
	}
}
