package standard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
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
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.expr", "expression %q uses unknown name %s (known: %s): %s",
				src, strings.Join(missing, ", "), strings.Join(sortedKeys(env), ", "), exprMessage(err))
		}
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.expr", "expression %q does not compile: %s", src, exprMessage(err))
	}
	out, err := expr.Run(prog, env)
	if err != nil {
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("expression %q cannot be evaluated: %s", src, exprMessage(err))}, nil
	}
	ok, isBool := out.(bool)
	if !isBool {
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("expression %q is %s (%v), not true or false", src, kindWord(fmt.Sprintf("%T", out)), out)}, nil
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

// exprMessage is expr-lang's message without its source snippet (a caret
// under the expression's first line), with its Go conversions said in words.
func exprMessage(err error) string {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if m := expectedBoolRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("it is %s, not true or false", kindWord(m[1]))
	}
	if m := notBoolRE.FindStringSubmatch(msg); m != nil {
		t := m[1]
		if t == "" {
			t = m[2]
		}
		return fmt.Sprintf("a part of it is %s where true or false is needed", kindWord(t))
	}
	return msg
}

// expectedBoolRE matches expr-lang's error about a result that is not a
// boolean.
var expectedBoolRE = regexp.MustCompile(`^expected bool, but got (\S+)`)

// notBoolRE matches expr-lang's errors about a value used as a boolean.
var notBoolRE = regexp.MustCompile(`bool\(([^)]*)\)|interface \{\} is ([^,]+), not bool`)

// kindWord names a Go type as a pipeline author knows it.
func kindWord(goType string) string {
	switch {
	case strings.HasPrefix(goType, "float") || strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a map"
	case goType == "<nil>" || goType == "nil":
		return "nil"
	}
	return goType
}
