package orchestrator

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/expr"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// runSchema is the shape of a run-like action type that marks its script.
var runSchema = map[string]any{
	"type":        "object",
	sdk.SchemaEnv: "vars",
	"properties": map[string]any{
		"script": map[string]any{"type": "string", sdk.SchemaScript: true},
		"shell":  map[string]any{"type": "string", sdk.SchemaShell: true},
		"vars":   map[string]any{"type": "object"},
		"note":   map[string]any{"type": "string"},
	},
}

func TestScriptsFromSchema(t *testing.T) {
	s := scriptsFromSchema(runSchema)
	if s == nil || !s.has("script") || s.has("note") || s.env != "vars" || s.shell != "shell" {
		t.Fatalf("got %+v", s)
	}
	plain := scriptsFromSchema(map[string]any{"properties": map[string]any{"run": map[string]any{"type": "string"}}})
	if plain != nil || plain.has("run") {
		t.Errorf("a schema without annotations has scripts: %+v", plain)
	}
	if s := scriptsFromSchema(map[string]any{"properties": map[string]any{"run": map[string]any{sdk.SchemaScript: true}}}); s.env != "env" {
		t.Errorf("default env param %q", s.env)
	}
}

func TestScriptRewrite(t *testing.T) {
	ectx := expr.Context{Params: map[string]any{"ref": `a";touch${IFS}pwned;"`, "id": "$(id)"}}.Map()
	s := scriptsFromSchema(runSchema)
	params := map[string]any{
		"script": `make REF="${{ params.ref }}" ID=${{ params.id }}` + "\ncat <<EOF\n${{ params.id }}\nEOF",
		"note":   "already interpolated",
		"vars":   map[string]any{"PALVELLA_EXPR_2": "the author's", "KEEP": "x"},
	}
	out, err := s.rewrite("build", params, ectx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `make REF="${PALVELLA_EXPR_1}" ID="${PALVELLA_EXPR_3}"` + "\ncat <<EOF\n${PALVELLA_EXPR_4}\nEOF"; out["script"] != want {
		t.Errorf("script %q, want %q", out["script"], want)
	}
	want := map[string]any{"PALVELLA_EXPR_1": `a";touch${IFS}pwned;"`, "PALVELLA_EXPR_2": "the author's", "PALVELLA_EXPR_3": "$(id)", "PALVELLA_EXPR_4": "$(id)", "KEEP": "x"}
	if !reflect.DeepEqual(out["vars"], want) {
		t.Errorf("vars %v, want %v", out["vars"], want)
	}
	if out["note"] != "already interpolated" {
		t.Errorf("note %v", out["note"])
	}

	// Refused positions name the action, the param and the expression.
	_, err = s.rewrite("build", map[string]any{"script": `echo '${{ params.ref }}'`}, ectx)
	var se *expr.ShellError
	if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "action build: script: ${{ params.ref }} at byte 6 is inside single quotes") {
		t.Errorf("single quotes: %v", err)
	}
	// Other programs than POSIX shells get no ${{ }}.
	_, err = s.rewrite("py", map[string]any{"script": `print("${{ params.ref }}")`, "shell": "python3 -c"}, ectx)
	if err == nil || !strings.Contains(err.Error(), `action py: script: ${{ }} in a script run by "python3", which is not a POSIX shell`) {
		t.Errorf("python: %v", err)
	}
	// ... but a script without any is fine.
	if _, err := s.rewrite("py", map[string]any{"script": `print(1)`, "shell": "python3 -c"}, ectx); err != nil {
		t.Errorf("python without expressions: %v", err)
	}
	if _, err := s.rewrite("b", map[string]any{"script": `echo ${{ params.ref }}`, "shell": []any{"/usr/bin/env", "bash", "-c"}}, ectx); err != nil {
		t.Errorf("env bash: %v", err)
	}
	if _, err := s.rewrite("b", map[string]any{"script": `echo ${{ params.ref }}`, "vars": "x"}, ectx); err == nil {
		t.Errorf("a vars param that is not an object was accepted")
	}
	if _, err := s.rewrite("b", map[string]any{"script": `echo ${{ params.nope }}`}, ectx); err == nil || !strings.Contains(err.Error(), `action b: script: ${{ params.nope }}: unknown name`) {
		t.Errorf("unknown name: %v", err)
	}
	var none *scriptParams
	p := map[string]any{"run": "echo ${{ params.ref }}"}
	if got, err := none.rewrite("x", p, ectx); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("no scripts: %v %v", got, err)
	}
}

func TestPOSIXShell(t *testing.T) {
	for v, want := range map[any]bool{
		nil: true, "sh": true, "bash -e -c": true, "/bin/dash": true, "zsh -c": true,
		"python3 -c": false, "node -e": false, "pwsh -Command": false, "fish -c": false,
		"env -i FOO=1 bash -c": true, "busybox sh -c": true, "busybox awk": false,
	} {
		if _, got := posixShell(v); got != want {
			t.Errorf("%v: %v, want %v", v, got, want)
		}
	}
	if _, ok := posixShell([]any{"bash", "-c"}); !ok {
		t.Errorf("list")
	}
	if _, ok := posixShell(3); ok {
		t.Errorf("number")
	}
}
