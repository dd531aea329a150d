package terraform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugins/job/terraform/tofutest"
)

const mainTF = `terraform {
  backend "local" {}
}

variable "environment" {
  type = string
}

variable "tags" {
  type = list(string)
}

resource "terraform_data" "app" {
  input = {
    environment = var.environment
    tags        = var.tags
  }
}
`

// workspaceWithConfig is a job workspace into which a checkout put the
// configuration at infra/main.tf.
func workspaceWithConfig(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "infra", "main.tf"), []byte(mainTF), 0o644); err != nil {
		t.Fatal(err)
	}
	return ws
}

// The scripts against the real OpenTofu, each job in its own workspace as
// the worker runs them: plan (changes), apply of the stored plan, plan
// again (no changes); init with a backend configuration, a workspace, and
// typed variables from the generated var-file.
func TestScriptsWithRealOpenTofu(t *testing.T) {
	tofu := tofutest.Binary(t)
	state := t.TempDir()
	with := map[string]any{
		"dir":            "infra",
		"binary":         tofu,
		"workspace":      "prod",
		"reconfigure":    true,
		"backend_config": map[string]any{"path": filepath.Join(state, "default.tfstate"), "workspace_dir": filepath.Join(state, "ws")},
		"vars":           map[string]any{"environment": "prod", "tags": []any{"a", "$(id)"}, "undeclared": "is only a warning"},
	}
	plan := expand(t, "plan", "plan", with)
	applyWith := map[string]any{"plan_job": "plan"}
	for _, k := range []string{"dir", "binary", "workspace", "backend_config"} {
		applyWith[k] = with[k]
	}
	apply := expand(t, "apply", "apply", applyWith)
	env := []string{"CHECKPOINT_DISABLE=1"}

	ws := workspaceWithConfig(t)
	code, out, outputs := runScript(t, plan.Actions[0], ws, env...)
	if code != 0 || outputs != "changed=true\n" {
		t.Fatalf("first plan: exit %d, outputs %q:\n%s", code, outputs, out)
	}
	planFile, err := os.ReadFile(filepath.Join(ws, PlanFile))
	if err != nil {
		t.Fatalf("no plan file: %v", err)
	}

	// apply runs in another workspace, with the plan the storage gives it.
	ws2 := workspaceWithConfig(t)
	if err := os.WriteFile(filepath.Join(ws2, PlanFile), planFile, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runScript(t, apply.Actions[0], ws2, env...)
	if code != 0 || !strings.Contains(out, "Apply complete! Resources: 1 added") {
		t.Fatalf("apply: exit %d:\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(state, "ws", "prod", "terraform.tfstate"))
	if err != nil || !strings.Contains(string(b), `"$(id)"`) {
		t.Fatalf("the prod workspace's state = %s, %v; want the tags as given", b, err)
	}

	code, out, outputs = runScript(t, plan.Actions[0], workspaceWithConfig(t), env...)
	if code != 0 || outputs != "changed=false\n" || !strings.Contains(out, "No changes.") {
		t.Fatalf("second plan: exit %d, outputs %q:\n%s", code, outputs, out)
	}

	// A broken configuration fails the plan with terraform's own message.
	bad := workspaceWithConfig(t)
	if err := os.WriteFile(filepath.Join(bad, "infra", "main.tf"), []byte("resource \"terraform_data\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, outputs = runScript(t, plan.Actions[0], bad, env...)
	if code == 0 || outputs != "" || !strings.Contains(out, "Error") {
		t.Fatalf("broken configuration: exit %d, outputs %q:\n%s", code, outputs, out)
	}
}
