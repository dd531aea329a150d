// Package expr evaluates the expressions of pipeline files: the `if` of
// jobs and actions, the `expr` of compare actions, and `${{ ... }}` inside
// strings.
//
// The language is expr-lang (https://expr-lang.org) over a [Context] with
// the top-level names params, job, jobs, actions, trigger and run. Names
// with dashes are indexed: jobs["terraform-prod-plan"].status.
//
// Names are checked where the pipeline defines them: a param, a job, an
// action, a field of job, trigger or run, and the status and outputs of a
// job or action must exist, or evaluation fails with "unknown name".
// Values the pipeline does not define read as nil when missing: keys inside
// outputs, trigger.payload, trigger.headers and inside object params. So
// jobs["plan"].outputs.changed == true is false for a skipped job, which
// has no outputs.
//
// Evaluation is bounded: an expression is at most [MaxLength] bytes and
// [MaxNodes] syntax nodes, predicates (all, map, filter...) may visit at
// most [MaxSteps] elements in total, no string, list or map built by an
// expression may exceed [MaxValueBytes] bytes or [MaxItems] items, and only
// the functions in [Functions] exist. The language has no loops other than
// predicates over finite collections, so evaluation always ends.
package expr

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Limits of one expression and one evaluation.
const (
	// MaxLength is the longest expression, in bytes.
	MaxLength = 2048
	// MaxNodes is the largest syntax tree of an expression.
	MaxNodes = 500
	// MaxSteps is how many collection elements the predicates of one
	// evaluation may visit in total.
	MaxSteps = 100_000
	// MaxValueBytes is the longest string an expression may build, and
	// the longest rendering of one ${{ ... }} in [Interpolate].
	MaxValueBytes = 1 << 20
	// MaxItems is the most items a list or map built by an expression may
	// have.
	MaxItems = 10_000
	// memoryBudget is the VM's allocation budget (ranges, literals).
	memoryBudget = 1_000_000
)

// Sentinel errors; every error of this package is an *Error that wraps
// one of them.
var (
	// ErrCompile: the expression is not valid (syntax, unknown name,
	// unknown function, too long).
	ErrCompile = errors.New("expr: invalid expression")
	// ErrEval: evaluation failed (missing name, wrong operand types,
	// limit reached).
	ErrEval = errors.New("expr: evaluation failed")
	// ErrType: the result has the wrong type (EvalBool).
	ErrType = errors.New("expr: wrong result type")
)

// Error is an error about one expression.
type Error struct {
	// Kind is ErrCompile, ErrEval or ErrType.
	Kind error
	// Expr is the expression's source.
	Expr string
	// Template is true when the expression came from ${{ ... }}.
	Template bool
	// Message says what is wrong.
	Message string
}

func (e *Error) Error() string {
	if e.Template {
		return "${{ " + e.Expr + " }}: " + e.Message
	}
	return strconv.Quote(e.Expr) + ": " + e.Message
}

// Unwrap returns the error's kind.
func (e *Error) Unwrap() error { return e.Kind }

// Functions are the functions an expression may call; the other
// expr-lang builtins (repeat, reduce, toJSON, string, now, ...) are not
// available because they can build unbounded values or are not
// deterministic.
var Functions = []string{
	"abs", "all", "any", "ceil", "count", "filter", "find", "findIndex", "findLast", "findLastIndex",
	"first", "float", "floor", "fromJSON", "get", "groupBy", "hasPrefix", "hasSuffix", "indexOf", "int",
	"join", "keys", "last", "lastIndexOf", "len", "lower", "map", "max", "mean", "median", "min",
	"none", "one", "replace", "reverse", "round", "sort", "sortBy", "split", "splitAfter", "sum",
	"take", "trim", "trimPrefix", "trimSuffix", "type", "uniq", "upper", "values",
}

// predicates are the builtins that iterate over their first argument.
var predicates = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true, "find": true,
	"findIndex": true, "findLast": true, "findLastIndex": true, "count": true, "sum": true,
	"groupBy": true, "sortBy": true, "mean": true, "median": true, "max": true, "min": true,
	"sort": true, "uniq": true, "reverse": true, "keys": true, "values": true, "join": true,
}

// Scope is what is known about the names of a pipeline when it is
// applied. A nil list is not checked.
type Scope struct {
	// Params are the pipeline's param names.
	Params []string
	// JobParams are the names of the job's params.
	JobParams []string
	// Jobs are the pipeline's job names.
	Jobs []string
	// Actions are the names of the actions an expression may refer to.
	Actions []string
}

// fields of the objects whose keys are fixed.
var (
	resultFields  = []string{"outputs", "status"}
	triggerFields = []string{"headers", "name", "payload", "type"}
	runFields     = []string{"id", "namespace", "pipeline"}
	jobFields     = []string{"params"}
)

// Compile checks that src is a valid expression: its syntax, its length,
// that it uses only the top-level names and [Functions], and, for the
// lists scope gives, that the params, jobs and actions it names with
// constant keys exist. scope may be nil.
func Compile(src string, scope *Scope) error {
	_, err := compile(src, scope, &budget{}, false)
	return err
}

// Eval evaluates src against c.
func Eval(src string, c Context) (any, error) {
	return evalMap(src, c.Map(), false)
}

// EvalMap evaluates src against env, a map in the shape of
// [Context.Map].
func EvalMap(src string, env map[string]any) (any, error) {
	return evalMap(src, env, false)
}

// EvalBool evaluates src against c; the result must be a boolean.
func EvalBool(src string, c Context) (bool, error) {
	out, err := evalMap(src, c.Map(), false)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, &Error{Kind: ErrType, Expr: src, Message: fmt.Sprintf("result is %s, not a boolean", typeName(out))}
	}
	return b, nil
}

func evalMap(src string, env map[string]any, template bool) (any, error) {
	b := &budget{}
	prog, err := compile(src, nil, b, template)
	if err != nil {
		return nil, err
	}
	machine := vm.VM{MemoryBudget: memoryBudget}
	out, err := machine.Run(prog, env)
	if err != nil {
		return nil, &Error{Kind: ErrEval, Expr: strings.TrimSpace(src), Template: template, Message: message(err)}
	}
	return out, nil
}

// skeleton is the environment expressions are type-checked against.
var skeleton = func() map[string]any {
	env := make(map[string]any, len(Names))
	for _, n := range Names {
		env[n] = map[string]any{}
	}
	return env
}()

func compile(src string, scope *Scope, b *budget, template bool) (*vm.Program, error) {
	if !template {
		src = unwrap(src)
	}
	shown := strings.TrimSpace(src)
	fail := func(msg string) error {
		return &Error{Kind: ErrCompile, Expr: shown, Template: template, Message: msg}
	}
	if len(src) > MaxLength {
		return nil, fail(fmt.Sprintf("expression is %d bytes, longer than %d", len(src), MaxLength))
	}
	if shown == "" {
		return nil, fail("empty expression")
	}
	p := &patcher{scope: scope, chains: map[ast.Node]chain{}}
	prog, err := exprlang.Compile(src,
		exprlang.Env(skeleton),
		exprlang.MaxNodes(MaxNodes),
		exprlang.Patch(p),
		exprlang.Function(fnGet, func(args ...any) (any, error) { return get(args[0], args[1], args[2].(string), false) }),
		exprlang.Function(fnGetOptional, func(args ...any) (any, error) { return get(args[0], args[1], args[2].(string), true) }),
		exprlang.Function(fnEach, b.each),
		exprlang.Function(fnCap, capValue),
	)
	if len(p.errs) > 0 {
		return nil, fail(strings.Join(p.errs, "; "))
	}
	if err != nil {
		return nil, fail(message(err))
	}
	return prog, nil
}

// unwrap returns the expression of an `if` written as ${{ ... }}.
func unwrap(src string) string {
	t := strings.TrimSpace(src)
	if !strings.HasPrefix(t, open) || len(src) > MaxLength {
		return src
	}
	parts, err := Split(t)
	if err != nil || len(parts) != 1 || !parts[0].Expr {
		return src
	}
	return parts[0].Text
}

// message extracts expr-lang's message without its source snippet.
func message(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

// Names of the functions the patcher inserts. They cannot be written in
// an expression: the lexer does not accept their first character.
const (
	fnGet         = "·get"
	fnGetOptional = "·getopt"
	fnEach        = "·each"
	fnCap         = "·cap"
)

// chain is what the patcher knows about a member access rooted at a
// top-level name: the root and the constant keys ("" for a computed key).
type chain struct {
	root string
	keys []string
}

// patcher rewrites the syntax tree before it is compiled: member accesses
// the pipeline defines become strict lookups, predicates are metered and
// values that can grow are capped.
type patcher struct {
	scope  *Scope
	chains map[ast.Node]chain
	errs   []string
}

// Visit is called for every node, children first.
func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if slices.Contains(Names, n.Value) {
			p.chains[n] = chain{root: n.Value}
		}
	case *ast.MemberNode:
		parent, ok := p.chains[n.Node]
		if !ok {
			return
		}
		key := ""
		if s, ok := n.Property.(*ast.StringNode); ok {
			key = s.Value
		}
		known, strict := p.known(parent)
		if !strict {
			return
		}
		where := describe(parent)
		if key != "" && known != nil && !slices.Contains(known, key) {
			p.errs = append(p.errs, unknown(key, where, known))
		}
		fn := fnGet
		if n.Optional {
			fn = fnGetOptional
		}
		call := &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: fn},
			Arguments: []ast.Node{n.Node, n.Property, &ast.StringNode{Value: where}},
		}
		ast.Patch(node, call)
		p.chains[call] = chain{root: parent.root, keys: append(slices.Clone(parent.keys), key)}
	case *ast.BuiltinNode:
		if !slices.Contains(Functions, n.Name) {
			p.errs = append(p.errs, fmt.Sprintf("function %s is not available", n.Name))
			return
		}
		if predicates[n.Name] && len(n.Arguments) > 0 {
			n.Arguments[0] = &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnEach}, Arguments: []ast.Node{n.Arguments[0]}}
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnCap}, Arguments: []ast.Node{n}})
	case *ast.BinaryNode:
		if n.Operator == "+" {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnCap}, Arguments: []ast.Node{n}})
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && strings.HasPrefix(id.Value, "·") {
			return
		}
		p.errs = append(p.errs, fmt.Sprintf("%s is not a function", n.Callee))
	}
}

// known returns the keys that exist below c and whether a lookup below c
// is strict. A nil list with strict true means the keys are not known at
// compile time but must exist at run time.
func (p *patcher) known(c chain) ([]string, bool) {
	s := p.scope
	if s == nil {
		s = &Scope{}
	}
	depth := len(c.keys)
	switch c.root {
	case "params":
		return s.Params, depth == 0
	case "job":
		switch {
		case depth == 0:
			return jobFields, true
		case depth == 1 && c.keys[0] == "params":
			return s.JobParams, true
		}
	case "jobs", "actions":
		names := s.Jobs
		if c.root == "actions" {
			names = s.Actions
		}
		switch depth {
		case 0:
			return names, true
		case 1:
			return resultFields, true
		}
	case "trigger":
		return triggerFields, depth == 0
	case "run":
		return runFields, depth == 0
	}
	return nil, false
}

// describe renders a chain as it would be written: jobs["build"].
func describe(c chain) string {
	var b strings.Builder
	b.WriteString(c.root)
	for _, k := range c.keys {
		switch {
		case k == "":
			b.WriteString("[...]")
		case isIdent(k):
			b.WriteString("." + k)
		default:
			b.WriteString("[" + strconv.Quote(k) + "]")
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	for i, r := range s {
		if r != '_' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func unknown(key, where string, known []string) string {
	msg := fmt.Sprintf("unknown name %q in %s", key, where)
	if s := Suggest(key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// get looks key up in obj, failing when it is missing unless optional.
func get(obj, key any, where string, optional bool) (any, error) {
	if obj == nil {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot read %v of nil %s", key, where)
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is %s, not a map", where, typeName(obj))
	}
	k, ok := key.(string)
	if !ok {
		return nil, fmt.Errorf("key of %s is %s, not a string", where, typeName(key))
	}
	v, ok := m[k]
	if !ok && !optional {
		return nil, errors.New(unknown(k, where, sortedKeys(m)))
	}
	return v, nil
}

// budget meters the predicates of one evaluation.
type budget struct{ steps int }

func (b *budget) each(args ...any) (any, error) {
	v := reflect.ValueOf(args[0])
	switch v.Kind() {
	case reflect.Array, reflect.Slice, reflect.Map, reflect.String:
		b.steps += v.Len()
	}
	if b.steps > MaxSteps {
		return nil, fmt.Errorf("evaluation visits more than %d elements", MaxSteps)
	}
	return args[0], nil
}

// capValue fails for strings, lists and maps beyond the limits.
func capValue(args ...any) (any, error) {
	v := args[0]
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		if rv.Len() > MaxValueBytes {
			return nil, fmt.Errorf("string is longer than %d bytes", MaxValueBytes)
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		if rv.Len() > MaxItems {
			return nil, fmt.Errorf("%s has more than %d items", typeName(v), MaxItems)
		}
	}
	return v, nil
}

// typeName names the type of a value as a pipeline author knows it.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
