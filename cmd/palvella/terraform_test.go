package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugins/job/terraform/tofutest"

	"github.com/palvella/palvella/core/resource"
)

// reachableCopy puts bin into dir (a hard link, or a copy across
// filesystems), since where it is cached (under root's home) a job running
// as another user cannot reach it.
func reachableCopy(t *testing.T, bin, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "tofu")
	if err := os.Link(bin, dst); err != nil {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// The terraform job plugin against the real OpenTofu, through the real
// server and CLI: a configuration checked out into storage, plan with a
// workspace, variables and a backend configuration, an approval in prod
// only when the plan has changes, and apply of exactly that plan. The
// second run plans no changes and skips the approval.
func TestTerraformWithRealOpenTofu(t *testing.T) {
	dir := t.TempDir()
	// Jobs may run as another user (a root server runs them as nobody):
	// the configuration, the state folder and the binary must be theirs
	// to reach.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tofu := reachableCopy(t, tofutest.Binary(t), dir)
	config := filepath.Join(dir, "main.tf")
	if err := os.WriteFile(config, []byte(`terraform {
  backend "local" {}
}

variable "environment" {
  type = string
}

variable "replicas" {
  type = number
}

variable "note" {
  type = string
}

resource "terraform_data" "app" {
  input = {
    environment = var.environment
    replicas    = var.replicas
    note        = var.note
  }
}

output "environment" {
  value = terraform_data.app.output.environment
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	backend := `{path: "${{ params.state }}/terraform.tfstate", workspace_dir: "${{ params.state }}/workspaces"}`
	file := writePipeline(t, "infra", `  params:
    - {name: environment, type: string, default: nonprod}
    - {name: tofu, type: string}
    - {name: config, type: string}
    - {name: state, type: string}
    - {name: note, type: string, default: plain}
  jobs:
    - name: checkout
      actions:
        - name: fetch
          run: mkdir -p infra && cp "${{ params.config }}" infra/main.tf
      storage: {put: [infra/main.tf]}
    - name: plan
      requires: [checkout]
      storage: {get: [infra/main.tf]}
      uses: terraform/plan
      with:
        dir: infra
        binary: "${{ params.tofu }}"
        workspace: "${{ params.environment }}"
        backend_config: `+backend+`
        vars: {environment: "${{ params.environment }}", replicas: 2, note: "${{ params.note }}"}
    - name: approve
      requires: [plan]
      if: params.environment == "prod"
      uses: terraform/approve-if-changed
      with: {plan_job: plan}
    - name: apply
      requires: [approve]
      storage: {get: [infra/main.tf]}
      uses: terraform/apply
      with:
        plan_job: plan
        dir: infra
        binary: "${{ params.tofu }}"
        workspace: "${{ params.environment }}"
        backend_config: `+backend+`
`)
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", file)
	note := `"; touch pwned; echo "$(id)`
	args := []string{"pipeline", "run", "infra", "-p", "environment=prod", "-p", "tofu=" + tofu, "-p", "config=" + config, "-p", "state=" + state, "-p", "note=" + note}

	// First run: changes, so the run waits for approval before applying.
	s.mustCLI(args...)
	r := s.waitRun("infra-1", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting || r.Status.Terminal() })
	if r.Status != resource.StatusWaiting {
		t.Fatalf("run 1 = %s, want waiting for approval:\n%s\n%s", r.Status, s.mustCLI("run", "get", "infra-1"), s.mustCLI("run", "logs", "infra-1"))
	}
	if changed := r.Job("plan").Outputs["changed"]; changed != true {
		t.Fatalf("run 1: plan changed = %v, want true", changed)
	}
	if st := r.Job("apply").Status; st != resource.StatusPending {
		t.Fatalf("run 1: apply is %s before the approval", st)
	}
	planLog := s.mustCLI("run", "logs", "infra-1", "--job", "plan")
	for _, want := range []string{"init -input=false", "OpenTofu has been successfully initialized", "workspace select -or-create prod", "terraform_data.app will be created", "Plan: 1 to add"} {
		if !strings.Contains(planLog, want) {
			t.Errorf("run 1: the plan log has no %q:\n%s", want, planLog)
		}
	}
	s.mustCLI("run", "approve", "infra-1")
	r = s.waitRun("infra-1", "finished", func(r *resource.Run) bool { return r.Status.Terminal() })
	applyLog := s.mustCLI("run", "logs", "infra-1", "--job", "apply")
	if r.Status != resource.StatusSuccess || !strings.Contains(applyLog, "Apply complete! Resources: 1 added") {
		t.Fatalf("run 1 = %s after approval; apply log:\n%s", r.Status, applyLog)
	}
	// The state is where the backend configuration put it, in the
	// workspace's folder, with the variable's value as it was given.
	b, err := os.ReadFile(filepath.Join(state, "workspaces", "prod", "terraform.tfstate"))
	if err != nil {
		t.Fatalf("no state in the prod workspace: %v", err)
	}
	if !strings.Contains(string(b), `touch pwned; echo \"$(id)`) {
		t.Errorf("the state does not hold the note as given:\n%s", b)
	}
	_ = filepath.WalkDir(s.home, func(path string, _ os.DirEntry, _ error) error {
		if filepath.Base(path) == "pwned" {
			t.Errorf("a variable's value ran as a command: %s", path)
		}
		return nil
	})

	// Second run: no changes, no approval, and apply changes nothing.
	s.mustCLI(append(args, "--wait")...)
	r = s.run("infra-2")
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run 2 = %s:\n%s", r.Status, s.mustCLI("run", "get", "infra-2"))
	}
	if changed := r.Job("plan").Outputs["changed"]; changed != false {
		t.Fatalf("run 2: plan changed = %v, want false", changed)
	}
	if a := actionOf(t, r, "approve", "approve"); a.Status != resource.StatusSkipped {
		t.Errorf("run 2: approval = %s, want skipped", a.Status)
	}
	if log := s.mustCLI("run", "logs", "infra-2", "--job", "plan"); !strings.Contains(log, "No changes.") {
		t.Errorf("run 2: plan log:\n%s", log)
	}

	// nonprod is another workspace: its own changes, no approval at all.
	s.mustCLI("pipeline", "run", "infra", "-p", "tofu="+tofu, "-p", "config="+config, "-p", "state="+state, "--wait")
	r = s.run("infra-3")
	if r.Status != resource.StatusSuccess || r.Job("plan").Outputs["changed"] != true || r.Job("approve").Status != resource.StatusSkipped {
		t.Fatalf("run 3 (nonprod) = %s, changed %v, approve %s", r.Status, r.Job("plan").Outputs["changed"], r.Job("approve").Status)
	}
	if _, err := os.Stat(filepath.Join(state, "workspaces", "nonprod", "terraform.tfstate")); err != nil {
		t.Errorf("no state in the nonprod workspace: %v", err)
	}
}
