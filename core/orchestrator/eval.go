package orchestrator

import (
	"fmt"

	"github.com/palvella/palvella/core/expr"
)

// exprEval evaluates expressions with core/expr.
type exprEval struct{}

func (exprEval) EvalBool(src string, env map[string]any) (bool, error) {
	v, err := expr.EvalMap(src, env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: is %T, not true or false", src, v)
	}
	return b, nil
}

func (exprEval) Interpolate(s string, env map[string]any) (string, error) {
	return expr.InterpolateMap(s, env)
}

func (o *Orchestrator) eval() evaluator { return exprEval{} }
