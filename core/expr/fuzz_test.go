package expr

import (
	"errors"
	"testing"
)

// FuzzEval checks that no expression panics or escapes the package's
// errors, and that an expression that evaluates also compiles.
func FuzzEval(f *testing.F) {
	for _, s := range []string{
		`jobs["terraform-prod-plan"].outputs.changed == true`,
		`actions.version_match.outputs.groups[1] == params.expected_version`,
		`all(params.list, # != nil) && len(trigger.payload) > 0`,
		`let x = params.obj; x?.k ?? "d"`,
		`map(1..10, # * 2)`, `params.environment + 1`, `$env`, `"a" | upper()`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		v, err := Eval(src, runContext)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (!errors.Is(err, ErrCompile) && !errors.Is(err, ErrEval)) {
				t.Fatalf("Eval(%q) error %v is not an *Error of a known kind", src, err)
			}
			return
		}
		_, _ = Render(v) // any value an expression returns can be rendered or refused
		if err := Compile(src, nil); err != nil {
			t.Fatalf("Eval(%q) succeeded but Compile fails: %v", src, err)
		}
	})
}

// FuzzInterpolate checks that no template panics, that text without ${{
// is returned as it is, and that errors are the package's.
func FuzzInterpolate(f *testing.F) {
	for _, s := range []string{
		"built ${{ params.environment }} in run ${{ run.id }}",
		"${{ '}}' }} and ${{ \"${{\" }}", "echo ${{ params.environment", "${{ params.list }}", "${{}}", "$${{{{}}}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Interpolate(s, runContext)
		if !HasExpressions(s) {
			if err != nil || out != s {
				t.Fatalf("Interpolate(%q) = %q, %v; want it unchanged", s, out, err)
			}
			return
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) && !errors.Is(err, ErrTemplate) {
				t.Fatalf("Interpolate(%q) error %v is not the package's", s, err)
			}
		}
	})
}
