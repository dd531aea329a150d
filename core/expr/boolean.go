package expr

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// NonBoolean says, in words, why src (an `if`, or a compare's expr) cannot
// be true or false, when that shows without evaluating it: its outermost
// operation makes a number, a string, a list or a map, or it is a param
// declared with another type. paramTypes maps the pipeline's param names to
// their declared types (string, number, boolean, list, object). It returns
// "" when src may be a boolean, and for a src that does not parse (Compile
// reports that).
func NonBoolean(src string, paramTypes map[string]string) string {
	src = unwrap(src)
	tree, err := parser.Parse(src)
	if err != nil {
		return ""
	}
	what := kindOf(tree.Node, paramTypes)
	if what == "" {
		return ""
	}
	shown := strings.Join(strings.Fields(src), " ")
	return fmt.Sprintf("%s is %s, not true or false: compare it to something, such as %s == ...", shown, what, shown)
}

// kindOf names what node makes when that is known and not a boolean.
func kindOf(n ast.Node, paramTypes map[string]string) string {
	switch t := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.StringNode:
		return "a string"
	case *ast.ArrayNode:
		return "a list"
	case *ast.MapNode:
		return "a map"
	case *ast.NilNode:
		return "nil"
	case *ast.UnaryNode:
		if t.Operator == "-" || t.Operator == "+" {
			return "a number"
		}
	case *ast.BinaryNode:
		switch t.Operator {
		case "-", "*", "/", "%", "**", "^":
			return "a number"
		case "..":
			return "a list"
		case "+":
			l, r := kindOf(t.Left, paramTypes), kindOf(t.Right, paramTypes)
			switch {
			case l == "a string" || r == "a string":
				return "a string"
			case l == "a number" || r == "a number":
				return "a number"
			}
			return "a number or a string"
		}
	case *ast.BuiltinNode:
		switch t.Name {
		case "len", "count", "sum", "abs", "int", "float", "max", "min", "round", "floor", "ceil", "mean", "median":
			return "a number"
		case "upper", "lower", "trim", "trimPrefix", "trimSuffix", "string", "join", "replace", "repeat", "toJSON", "toBase64", "fromBase64":
			return "a string"
		case "split", "map", "filter", "keys", "values", "sort", "reverse", "uniq", "flatten", "concat":
			return "a list"
		}
	case *ast.MemberNode:
		if id, ok := t.Node.(*ast.IdentifierNode); ok && id.Value == "params" {
			if key, ok := t.Property.(*ast.StringNode); ok {
				switch paramTypes[key.Value] {
				case "string":
					return fmt.Sprintf("param %s, a string", key.Value)
				case "number":
					return fmt.Sprintf("param %s, a number", key.Value)
				case "list":
					return fmt.Sprintf("param %s, a list", key.Value)
				case "object":
					return fmt.Sprintf("param %s, an object", key.Value)
				}
			}
		}
	}
	return ""
}
