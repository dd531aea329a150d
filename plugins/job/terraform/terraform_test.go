package terraform

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// uninterpolated is what the core's ${{ }} interpolation makes of a
// parameter the plugin wrote: the plugin writes no expression but the
// literal ${{ "${{" }}.
func uninterpolated(s string) string { return strings.ReplaceAll(s, `${{ "${{" }}`, "${{") }

// runScript runs an expanded run action's script as the local engine does
// (sh -e -c, the action's env) in workspace, with $PALVELLA_OUTPUT, and
// returns the exit code, the output and the outputs file. extraEnv comes
// last.
func runScript(t *testing.T, a job.ActionSpec, workspace string, extraEnv ...string) (int, string, string) {
	t.Helper()
	if a.Type != "run" {
		t.Fatalf("action %q has type %q, want run", a.Name, a.Type)
	}
	script, _ := a.Params["run"].(string)
	if strings.Contains(script, "${{") {
		t.Fatalf("the script has an expression in it:\n%s", script)
	}
	outputs := filepath.Join(t.TempDir(), "outputs")
	if err := os.WriteFile(outputs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir = workspace
	cmd.Env = append(os.Environ(), "PALVELLA_OUTPUT="+outputs)
	env, _ := a.Params["env"].(map[string]any)
	for k, v := range env {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("env %s is %T, want a string", k, v)
		}
		cmd.Env = append(cmd.Env, k+"="+uninterpolated(s))
	}
	cmd.Env = append(cmd.Env, extraEnv...)
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

// The older arguments (account, environment, binary, plan_job), as the
// shared example passes them, with the stand-in.
func TestPlanApproveApplyWithTheStub(t *testing.T) {
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
	plan := expand(t, "plan", "p", map[string]any{"binary": bin})
	code, out, outputs := runScript(t, plan.Actions[0], t.TempDir())
	if code != 1 || outputs != "" || !strings.Contains(out, "exit code 1") {
		t.Fatalf("failing plan: exit %d, outputs %q, output %q; want exit 1 and no changed output", code, outputs, out)
	}
}

// recorder writes a command that records its name and arguments, one per
// line, and succeeds.
func recorder(t *testing.T, dir, name string) {
	t.Helper()
	script := "#!/bin/sh\n{ echo \"" + name + "\"; for a in \"$@\"; do echo \"$a\"; done; echo --; } >> \"$RECORD\"\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Without a binary argument: terraform when it is on the PATH, else tofu,
// else a clear failure.
func TestDefaultBinary(t *testing.T) {
	plan := expand(t, "plan", "p", map[string]any{})
	shTool, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		onPath []string
		want   string
	}{
		{[]string{"terraform", "tofu"}, "terraform"},
		{[]string{"tofu"}, "tofu"},
		{nil, ""},
	} {
		bin := t.TempDir()
		for _, n := range tc.onPath {
			recorder(t, bin, n)
		}
		// The script needs only sh and its builtins, mktemp and rm.
		for _, tool := range []string{"mktemp", "rm"} {
			p, err := exec.LookPath(tool)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
				t.Fatal(err)
			}
		}
		record := filepath.Join(t.TempDir(), "record")
		cmd := exec.Command(shTool, "-e", "-c", plan.Actions[0].Params["run"].(string))
		cmd.Dir = t.TempDir()
		cmd.Env = []string{"PATH=" + bin, "RECORD=" + record, "PALVELLA_OUTPUT=" + filepath.Join(t.TempDir(), "out")}
		for k, v := range plan.Actions[0].Params["env"].(map[string]any) {
			cmd.Env = append(cmd.Env, k+"="+v.(string))
		}
		out, err := cmd.CombinedOutput()
		got, _ := os.ReadFile(record)
		if tc.want == "" {
			if err == nil || !strings.Contains(string(out), "neither terraform nor tofu is on the PATH") {
				t.Errorf("with neither on the PATH: %v, output %q", err, out)
			}
			continue
		}
		if err != nil || !strings.HasPrefix(string(got), tc.want+"\nplan\n") {
			t.Errorf("with %v on the PATH: %v, ran %q, want %s plan; output %s", tc.onPath, err, got, tc.want, out)
		}
	}
}

// Variables, the workspace, the backend configuration and the folder reach
// the command through the environment and generated files, never through
// the script's text, and run in the right order.
func TestArgumentsNeverInTheScript(t *testing.T) {
	bin := t.TempDir()
	recorder(t, bin, "terraform")
	evil := `"; touch pwned; echo "$(id) ${{ params.x }}`
	with := map[string]any{
		"binary":         filepath.Join(bin, "terraform"),
		"dir":            "infra dir",
		"workspace":      "prod",
		"reconfigure":    "true",
		"backend_config": map[string]any{"path": "/state/" + evil},
		"vars":           map[string]any{"note": evil, "replicas": 3.0, "tags": []any{"a", "b"}},
	}
	plan := expand(t, "plan", "p", with)
	if s := plan.Actions[0].Params["run"].(string); strings.Contains(s, "touch") || strings.Contains(s, "infra dir") {
		t.Fatalf("an argument is pasted into the script:\n%s", s)
	}
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, "infra dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "infra dir", "main.tf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A recorder that also keeps the generated files it is given.
	keep := `for a in "$@"; do case "$a" in -var-file=*) cp "${a#-var-file=}" "$RECORD.vars" ;; -backend-config=*) cp "${a#-backend-config=}" "$RECORD.backend" ;; esac; done`
	b, _ := os.ReadFile(filepath.Join(bin, "terraform"))
	if err := os.WriteFile(filepath.Join(bin, "terraform"), append(b, []byte(keep+"\n")...), 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "record")
	code, out, outputs := runScript(t, plan.Actions[0], ws, "RECORD="+record)
	if code != 0 || outputs != "changed=false\n" {
		t.Fatalf("plan: exit %d, outputs %q, output:\n%s", code, outputs, out)
	}
	if _, err := os.Stat(filepath.Join(ws, "infra dir", "pwned")); err == nil {
		t.Fatal("a variable's value ran as a command")
	}
	got, _ := os.ReadFile(record)
	calls := strings.Split(strings.TrimSuffix(string(got), "--\n"), "--\n")
	if len(calls) != 3 {
		t.Fatalf("calls = %q, want init, workspace, plan", calls)
	}
	init := strings.Fields(calls[0])
	if init[1] != "init" || init[2] != "-input=false" || init[3] != "-reconfigure" || !strings.HasPrefix(init[4], "-backend-config=") || !strings.HasSuffix(init[4], ".json") {
		t.Errorf("init call = %q", calls[0])
	}
	if calls[1] != "terraform\nworkspace\nselect\n-or-create\nprod\n" {
		t.Errorf("workspace call = %q", calls[1])
	}
	p := strings.Split(strings.TrimSpace(calls[2]), "\n")
	if p[1] != "plan" || p[2] != "-input=false" || p[3] != "-detailed-exitcode" || p[4] != "-out" || p[5] != filepath.Join(ws, "tfplan") || !strings.HasPrefix(p[6], "-var-file=") || len(p) != 7 {
		t.Errorf("plan call = %q", p)
	}
	vars, _ := os.ReadFile(record + ".vars")
	if want := `{"note":"\"; touch pwned; echo \"\u0024(id) \u0024{{ params.x }}","replicas":3,"tags":["a","b"]}`; strings.TrimSpace(string(vars)) != want {
		t.Errorf("var-file = %s\nwant       %s", vars, want)
	}
	backend, _ := os.ReadFile(record + ".backend")
	if !strings.Contains(string(backend), `"path":"/state/`) {
		t.Errorf("backend config file = %s", backend)
	}
}

func TestMissingDirSaysSo(t *testing.T) {
	plan := expand(t, "plan", "p", map[string]any{"dir": "infra", "binary": "true"})
	code, out, _ := runScript(t, plan.Actions[0], t.TempDir())
	if code == 0 || !strings.Contains(out, "the configuration folder infra is not in the workspace") {
		t.Fatalf("exit %d, output %q", code, out)
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
		{"plan", map[string]any{"account": "project1", "environment": " "}, "with.environment"},
		{"plan", map[string]any{"account": "project1", "environment": "prod", "enviroment": "prod"}, "with.enviroment"},
		{"plan", map[string]any{"account": 7.0, "environment": "prod"}, "with.account"},
		{"plan", map[string]any{"account": "a\nb", "environment": "prod"}, "with.account"},
		{"plan", map[string]any{"vars": "a=b"}, "with.vars"},
		{"plan", map[string]any{"vars": map[string]any{"": "x"}}, "with.vars"},
		{"plan", map[string]any{"reconfigure": "yes please"}, "with.reconfigure"},
		{"plan", map[string]any{"backend_config": []any{"a"}}, "with.backend_config"},
		{"plan", map[string]any{"dir": 3.0}, "with.dir"},
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

func TestSchemaListsEveryArgument(t *testing.T) {
	m, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range m.Types {
		props := ti.ParamsSchema["properties"].(map[string]any)
		var names []string
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		var want []string
		for _, a := range types[ti.Name].args {
			want = append(want, a.name)
		}
		sort.Strings(want)
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s: schema properties %v, want %v", ti.Name, names, want)
		}
	}
}
