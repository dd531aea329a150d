package params

import (
	"fmt"
	"slices"
	"testing"
)

func TestShellAndEnvironNameTheFieldsTheyRefuse(t *testing.T) {
	var fields []string
	bad := func(field, summary string, args ...any) {
		fields = append(fields, field+": "+fmt.Sprintf(summary, args...))
	}

	if sh, ok := Shell("shell", []any{"bash", "-c"}, bad); !ok || !slices.Equal(sh, []string{"bash", "-c"}) || len(fields) != 0 {
		t.Fatalf("Shell = %v, %v, problems %v", sh, ok, fields)
	}
	if _, ok := Shell("shell", []any{}, bad); ok || fields[0] != "shell: must be a non-empty list of strings" {
		t.Fatalf("an empty shell: ok %v, problems %v", ok, fields)
	}
	fields = nil
	if sh, _ := Shell("shell", []any{"sh", 3, ""}, bad); !slices.Equal(sh, []string{"sh"}) || !slices.Equal(fields, []string{"shell[1]: must be a non-empty string", "shell[2]: must be a non-empty string"}) {
		t.Fatalf("bad elements: %v, problems %v", sh, fields)
	}

	fields = nil
	env, ok := Environ("environ", map[string]any{"B": "2", "A=": "x", "C": 3}, map[string]string{"KEPT": "k"}, bad)
	if !ok || len(env) != 2 || env["B"] != "2" || env["KEPT"] != "k" {
		t.Fatalf("Environ = %v, %v", env, ok)
	}
	if !slices.Equal(fields, []string{"environ.A=: must be a string under a name without '='", "environ.C: must be a string under a name without '='"}) {
		t.Fatalf("problems %v, want A= and C in name order", fields)
	}
	fields = nil
	if env, ok := Environ("environ", "FOO=1", nil, bad); ok || env != nil || fields[0] != "environ: must be an object of variable names to string values (got string)" {
		t.Fatalf("a string: %v, %v, %v", env, ok, fields)
	}
}
