package standard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

// contextNames are the names an expression always sees, empty when the
// core sent nothing for them.
var contextNames = []string{"params", "job", "jobs", "actions", "trigger", "run"}

// exprEnv builds the environment of an expression from a request's context.
func exprEnv(c map[string]any) map[string]any {
	env := make(map[string]any, len(c)+len(contextNames))
	for _, n := range contextNames {
		env[n] = map[string]any{}
	}
	maps.Copy(env, c)
	return env
}

func (p *Plugin) runCompare(_ context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	src, err := reqString(req.Params, "expr")
	if err != nil {
		return nil, err
	}
	env := exprEnv(req.Context)
	prog, err := expr.Compile(src, expr.Env(env), expr.AsBool())
	if err != nil {
		if missing := unknownNames(src, env); len(missing) > 0 {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.expr", "expression %q uses unknown name %s (known: %s): %v",
				src, strings.Join(missing, ", "), strings.Join(sortedKeys(env), ", "), err)
		}
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.expr", "expression %q does not compile: %v", src, err)
	}
	out, err := expr.Run(prog, env)
	if err != nil {
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("expression %q cannot be evaluated: %v", src, err)}, nil
	}
	ok, isBool := out.(bool)
	if !isBool {
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("expression %q is %v, not a boolean", src, out)}, nil
	}
	if err := events.Output("result", ok); err != nil {
		return nil, fmt.Errorf("compare action %q: send output: %w", req.Name, err)
	}
	res := &action.Result{Status: action.StatusSuccess, Message: fmt.Sprintf("%s is true", src), Outputs: map[string]any{"result": ok}}
	if !ok {
		res.Status, res.Message = action.StatusFailure, fmt.Sprintf("%s is false", src)
	}
	return res, nil
}

// unknownNames returns the top-level names src uses that env lacks. It
// reads the syntax tree, so names bound inside the expression (let,
// predicates) are not reported.
func unknownNames(src string, env map[string]any) []string {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	v := &identVisitor{env: env, bound: map[string]bool{}}
	ast.Walk(&tree.Node, v)
	slices.Sort(v.missing)
	return slices.Compact(v.missing)
}

type identVisitor struct {
	env     map[string]any
	bound   map[string]bool
	missing []string
}

func (v *identVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.VariableDeclaratorNode:
		v.bound[n.Name] = true
	case *ast.IdentifierNode:
		if _, ok := v.env[n.Value]; !ok && !v.bound[n.Value] && !isBuiltinName(n.Value) {
			v.missing = append(v.missing, n.Value)
		}
	}
}

// isBuiltinName reports names expr resolves without the environment.
func isBuiltinName(name string) bool {
	_, err := expr.Compile(name)
	return err == nil
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
