package standard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// optString returns the string param name, or def when it is absent or
// null.
func optString(params map[string]any, name, def string) (string, error) {
	v, ok := params[name]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "must be a string, not %s", jsonType(v))
	}
	return s, nil
}

// reqString returns the string param name, which must be present and not
// empty.
func reqString(params map[string]any, name string) (string, error) {
	s, err := optString(params, name, "")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "is required")
	}
	return s, nil
}

// envMap reads an object of scalar values as environment variables.
func envMap(params map[string]any, name string) (map[string]string, error) {
	v, ok := params[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "must be an object of names to values, not %s", jsonType(v))
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "variable name %q is not valid", k)
		}
		switch x := e.(type) {
		case string:
			out[k] = x
		case bool:
			out[k] = strconv.FormatBool(x)
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			out[k] = strconv.Itoa(x)
		case int64:
			out[k] = strconv.FormatInt(x, 10)
		case nil:
			out[k] = ""
		default:
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "variable %q must be a string, number or boolean, not %s", k, jsonType(e))
		}
	}
	return out, nil
}

// posixShells get "-e" so that a failing command fails the script, as with
// the engines' default "sh -e -c".
var posixShells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "zsh": true}

// shellArgs reads the shell param: a list of words, or a string split on
// spaces. A single word gets the flags that make it run a script argument.
func shellArgs(params map[string]any) ([]string, error) {
	v, ok := params["shell"]
	if !ok || v == nil {
		return slices.Clone(defaultShell), nil
	}
	var words []string
	switch x := v.(type) {
	case string:
		words = strings.Fields(x)
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.shell", "shell[%d] must be a non-empty string", i)
			}
			words = append(words, s)
		}
	default:
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.shell", "must be a string or a list of strings, not %s", jsonType(v))
	}
	if len(words) == 0 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.shell", "is empty")
	}
	if len(words) == 1 {
		base := words[0][strings.LastIndex(words[0], "/")+1:]
		if posixShells[base] {
			return []string{words[0], "-e", "-c"}, nil
		}
		return []string{words[0], "-c"}, nil
	}
	return words, nil
}

// jsonType names the JSON type of a decoded value, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int64, int32:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
