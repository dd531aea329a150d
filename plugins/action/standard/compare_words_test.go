package standard

import (
	"context"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/action"
)

// A compare that is not true or false says so in words, on one line:
// never expr-lang's bool(float64) with a caret under the expression.
func TestCompareNotBooleanInWords(t *testing.T) {
	p := New()
	ctx := context.Background()
	runCtx := map[string]any{"params": map[string]any{"n": 1.0, "s": "x"}}
	for src, want := range map[string]string{
		"params.n\n  + 1":     "a part of it is a number where true or false is needed",
		"params.n\n  && true": "a part of it is a number where true or false is needed",
		"!params.s":           "a part of it is a string where true or false is needed",
	} {
		res, err := p.Run(ctx, &action.RunRequest{Type: "compare", Params: map[string]any{"expr": src}, Context: runCtx}, nil)
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if res.Status != action.StatusFailure || !strings.Contains(res.Message, want) || strings.Contains(res.Message, "\n") || strings.Contains(res.Message, "bool(") {
			t.Errorf("%q: %s %q, want a failure saying %q on one line", src, res.Status, res.Message, want)
		}
	}
	_, err := p.Run(ctx, &action.RunRequest{Type: "compare", Params: map[string]any{"expr": "1 +\n 1"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "it is a number, not true or false") || strings.Contains(err.Error(), "^") {
		t.Errorf("1 + 1: %v, want it is a number, not true or false", err)
	}
}
