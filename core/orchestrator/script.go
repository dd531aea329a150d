package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/palvella/palvella/core/expr"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Scripts and ${{ }}
//
// A `${{ ... }}` inside a script never becomes shell syntax. Which params
// of an action type are scripts is the type's to say, in the ParamsSchema
// its plugin describes (sdk.SchemaScript on the property, sdk.SchemaEnv
// naming the environment param, sdk.SchemaShell on the param naming the
// shell); the core names no plugin. For such a param, actionParams does not
// paste values: expr.InterpolateShell evaluates each expression into an
// environment variable PALVELLA_EXPR_<n> that goes into the action's env
// param, and writes a reference to it where the expression stood ("${V}"
// in a bare word, ${V} inside double quotes or an unquoted here-document).
// Positions where no reference can stand (single quotes, quoted
// here-documents, arithmetic...) fail the action with an error naming it,
// the param and the expression. A script run by a program other than a
// POSIX shell (the shell param names python, node...) may not hold
// `${{ ... }}` at all: its author reads the value from env instead.

// exprVarPrefix starts the names of the variables scripts' expressions
// are given in.
const exprVarPrefix = "PALVELLA_EXPR_"

// scriptParams is what an action type's schema says about its scripts.
type scriptParams struct {
	fields map[string]bool // params holding POSIX shell scripts
	env    string          // the object param variables go in
	shell  string          // the param naming the shell, or ""
}

// has reports whether param k is a script.
func (s *scriptParams) has(k string) bool { return s != nil && s.fields[k] }

// scriptsOf reads the script annotations of an action type from its
// plugin's manifest. A type no plugin provides has none (running it fails
// anyway); a manifest that cannot be read is an error, so that a script is
// never interpolated as plain text by mistake.
func (o *Orchestrator) scriptsOf(typ string) (*scriptParams, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.opts.PluginWait)
	defer cancel()
	ref, err := o.lookupType(ctx, sdk.CategoryAction, typ)
	if err != nil {
		return nil, nil // running it fails with why
	}
	p, err := o.plugin(ref.plugin)
	if err != nil {
		return nil, err
	}
	m, err := p.Manifest(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, o.notStarted(ref.plugin, err)
		}
		return nil, fmt.Errorf("action type %q: read its plugin's description: %w", typ, err)
	}
	for _, t := range m.Types {
		if t.Category == sdk.CategoryAction && t.Name == ref.name {
			return scriptsFromSchema(t.ParamsSchema), nil
		}
	}
	return nil, nil
}

// scriptsFromSchema reads the annotations of a ParamsSchema.
func scriptsFromSchema(schema map[string]any) *scriptParams {
	props, _ := schema["properties"].(map[string]any)
	s := &scriptParams{fields: map[string]bool{}, env: "env"}
	for name, v := range props {
		prop, _ := v.(map[string]any)
		if b, _ := prop[sdk.SchemaScript].(bool); b {
			s.fields[name] = true
		}
		if b, _ := prop[sdk.SchemaShell].(bool); b {
			s.shell = name
		}
	}
	if env, _ := schema[sdk.SchemaEnv].(string); env != "" {
		s.env = env
	}
	if len(s.fields) == 0 {
		return nil
	}
	return s
}

// rewrite interpolates the script params of an action (left as written by
// actionParams) into references to environment variables, which it adds
// to the env param. params holds the action's other params, interpolated.
func (s *scriptParams) rewrite(action string, params, ectx map[string]any) (map[string]any, error) {
	if s == nil {
		return params, nil
	}
	var names []string
	for k := range s.fields {
		if v, ok := params[k].(string); ok && expr.HasExpressions(v) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return params, nil
	}
	sort.Strings(names)
	env := map[string]any{}
	switch e := params[s.env].(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			env[k] = v
		}
	default:
		return nil, fmt.Errorf("action %s: %s: must be an object to receive the values of ${{ }} in %s", action, s.env, names[0])
	}
	if s.shell != "" {
		if prog, ok := posixShell(params[s.shell]); !ok {
			return nil, fmt.Errorf("action %s: %s: ${{ }} in a script run by %q, which is not a POSIX shell: the core cannot write a reference to a variable in its language; give the value in %s (%s: {NAME: \"${{ ... }}\"}) and read NAME from the environment in the script", action, names[0], prog, s.env, s.env)
		}
	}
	n := 0
	next := func(int) string {
		for {
			n++
			name := exprVarPrefix + strconv.Itoa(n)
			if _, taken := env[name]; !taken {
				return name
			}
		}
	}
	for _, k := range names {
		out, vars, err := expr.InterpolateShell(params[k].(string), ectx, next)
		if err != nil {
			return nil, fmt.Errorf("action %s: %s: %w", action, k, err)
		}
		params[k] = out
		for _, v := range vars {
			env[v.Name] = v.Value
		}
	}
	params[s.env] = env
	return params, nil
}

// posixShell reports whether a shell param (a string of words or a list
// of them; absent means the type's default, a POSIX shell) runs a POSIX
// shell, and names the program it runs.
func posixShell(v any) (string, bool) {
	var words []string
	switch t := v.(type) {
	case nil:
		return "", true
	case string:
		words = strings.Fields(t)
	case []any:
		for _, e := range t {
			s, _ := e.(string)
			words = append(words, s)
		}
	default:
		return fmt.Sprint(v), false
	}
	return expr.POSIXShell(words)
}
