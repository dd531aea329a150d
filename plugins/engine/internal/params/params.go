// Package params parses the type parameters that the container engines
// (docker, nomad, kubernetes) share the meaning of, with the messages the
// engines give: problems go to bad, on the parameter's key or an element
// of it.
package params

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// Bad reports a problem with a field (relative to the parameters).
type Bad func(field, summary string, args ...any)

// Shell parses shell (key k): a non-empty list of non-empty strings, the
// program and arguments a script is given to. ok is false when it was
// refused as a whole; elements refused are left out.
func Shell(k string, v any, bad Bad) (shell []string, ok bool) {
	list, isList := v.([]any)
	if !isList || len(list) == 0 {
		bad(k, "must be a non-empty list of strings")
		return nil, false
	}
	for i, item := range list {
		s, isStr := item.(string)
		if !isStr || s == "" {
			bad(fmt.Sprintf("%s[%d]", k, i), "must be a non-empty string")
			continue
		}
		shell = append(shell, s)
	}
	return shell, true
}

// Environ adds the variables of environ (key k), an object of names to
// string values, to into (made when nil) and returns it; variables
// refused are left out, in name order.
func Environ(k string, v any, into map[string]string, bad Bad) (map[string]string, bool) {
	m, isMap := v.(map[string]any)
	if !isMap {
		bad(k, "must be an object of variable names to string values (got %T)", v)
		return into, false
	}
	if into == nil {
		into = map[string]string{}
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		s, isStr := m[name].(string)
		if !isStr || name == "" || strings.ContainsAny(name, "=\x00") {
			bad(k+"."+name, "must be a string under a name without '='")
			continue
		}
		into[name] = s
	}
	return into, true
}

// AbsPath parses a directory of the engine's own (key k): a non-empty
// path, made absolute.
func AbsPath(k string, v any, bad Bad) (string, bool) {
	s, isStr := v.(string)
	if !isStr || s == "" {
		bad(k, "must be a non-empty path")
		return "", false
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		bad(k, "is not a usable path: %v", err)
		return "", false
	}
	return abs, true
}
