package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/resource"
)

// A ${{ }} in a run script never becomes shell syntax: values from a signed
// webhook and from run params that would run commands if pasted into the
// script are printed as they are.

const injectionPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: inject
spec:
  params:
    - {name: ref, type: string, default: refs/heads/main}
  triggers:
    - type: webhook
      name: on-push
      secret: {from_credential: inject-secret}
      params: {ref: "${{ trigger.payload.ref }}"}
  jobs:
    - name: build
      actions:
        - name: quoted
          run: echo "quoted=${{ params.ref }}"
        - name: bare
          run: echo bare=${{ params.ref }}
        - name: make
          run: printf '%s\n' REF="${{ params.ref }}"
        - name: heredoc
          run: |
            cat <<EOF
            heredoc=${{ params.ref }}
            EOF
        - name: payload
          run: echo "ref=${{ trigger.payload.ref }}" >> "$PALVELLA_OUTPUT"
        - name: check
          run: |
            if [ -e pwned ]; then echo "a payload ran"; exit 1; fi
`

func TestScriptInjection(t *testing.T) {
	s, hooks := webhookServer(t, "")
	const secret = "an injection test secret"
	s.mustCLI("credential", "set", "inject-secret", "--value", secret)
	dir := t.TempDir()
	file := filepath.Join(dir, "inject.yaml")
	if err := os.WriteFile(file, []byte(injectionPipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", file)
	outside := filepath.Join(dir, "pwned-outside")

	check := func(runName, value string) {
		t.Helper()
		run := s.waitRun(runName, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
		logs := s.mustCLI("run", "logs", runName)
		if run.Status != resource.StatusSuccess {
			t.Fatalf("run %s with %q: %s\n%s", runName, value, run.Status, logs)
		}
		for _, want := range []string{"quoted=" + value, "bare=" + value, "REF=" + value, "heredoc=" + value} {
			if !strings.Contains(logs, want) {
				t.Errorf("run %s: the log does not print %q literally:\n%s", runName, want, logs)
			}
		}
		if _, err := os.Stat(outside); err == nil {
			t.Fatalf("run %s with %q ran a payload", runName, value)
		}
	}

	// From a signed webhook.
	payloads := []string{
		`refs/heads/a";touch${IFS}pwned;"`,
		`refs/heads/b";touch${IFS}` + outside + `;"`,
		`$(touch pwned)`,
		"`touch pwned`",
		`'; touch pwned; '`,
	}
	for i, p := range payloads {
		body, _ := json.Marshal(map[string]string{"ref": p})
		r := hook(t, hooks+"/hooks/default/inject/on-push", body, "X-Palvella-Signature-256", hmacOf(secret, body), "X-Palvella-Delivery", "d-"+string(rune('a'+i)))
		if r.status != http.StatusAccepted || r.body.Run == "" {
			t.Fatalf("signed call with %q: %d %+v", p, r.status, r.body)
		}
		check(r.body.Run, p)
		run := s.run(r.body.Run)
		if got := actionOf(t, run, "build", "payload").Outputs["ref"]; got != p {
			t.Errorf("output ref = %q, want %q", got, p)
		}
	}
	// From a run param.
	for i, p := range []string{`$(id)`, `$(touch ` + outside + `)`, `x; touch pwned`} {
		s.cli("pipeline", "run", "inject", "-p", "ref="+p, "--wait")
		check("inject-"+strconv.Itoa(len(payloads)+i+1), p)
	}
}

// A ${{ }} where no reference can stand is refused when the pipeline is
// applied, naming the field and the expression; a script of another
// language than sh may not hold any.
func TestScriptInjectionRefused(t *testing.T) {
	s := startServer(t, "")
	file := filepath.Join(t.TempDir(), "refused.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: refused
spec:
  params:
    - {name: ref, type: string, default: "$(id)"}
  jobs:
    - name: single
      actions:
        - name: sq
          run: echo '${{ params.ref }}'
    - name: python
      actions:
        - name: py
          shell: python3
          run: print("${{ params.ref }}")
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.cli("pipeline", "apply", "-f", file)
	if code == 0 {
		t.Fatalf("applied: %s", out)
	}
	for _, want := range []string{
		"spec.jobs[0].actions[0].run: ${{ params.ref }} at byte 6 is inside single quotes",
		`spec.jobs[1].actions[0].run: ${{ }} in a script run by "python3", which is not a POSIX shell`,
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("apply does not say %q:\n%s%s", want, out, errOut)
		}
	}
}
