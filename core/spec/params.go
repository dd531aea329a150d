package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

var paramTypes = []string{TypeString, TypeBoolean, TypeNumber, TypeList, TypeObject}

// checkType says what is wrong when v is not of param type t, or "".
func checkType(t string, v any) string {
	ok := false
	switch t {
	case TypeString:
		_, ok = v.(string)
	case TypeBoolean:
		_, ok = v.(bool)
	case TypeNumber:
		switch v.(type) {
		case int, int64, float64:
			ok = true
		}
	case TypeList:
		_, ok = v.([]any)
	case TypeObject:
		_, ok = v.(map[string]any)
	}
	if ok {
		return ""
	}
	article := "a"
	if t == TypeObject {
		article = "an"
	}
	return fmt.Sprintf("%s is not %s %s", describeValue(v), article, t)
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// ResolveParams resolves the params of a run: given holds the values of
// `-p name=value` as strings, coerced to the declared types (boolean:
// true or false, also 1/0/t/f; number: an integer or decimal; list: a
// JSON array, or values separated by commas; object: a JSON object;
// string: as it is). Params not given take their defaults; a required
// param must be given. The error lists every problem, each an
// *sdk.Error of kind sdk.ErrInvalidArgument naming params.<name>.
func (s *Spec) ResolveParams(given map[string]string) (map[string]any, error) {
	out := make(map[string]any, len(s.Params))
	var errs []error
	names := make([]string, 0, len(s.Params))
	for _, p := range s.Params {
		names = append(names, p.Name)
	}
	for _, name := range sortedKeys(given) {
		p := s.Param(name)
		if p == nil {
			errs = append(errs, sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "unknown param %q%s", name, suggestion(name, names)))
			continue
		}
		v, err := Coerce(p.Type, given[name])
		if err != nil {
			errs = append(errs, sdk.Errorf(sdk.ErrInvalidArgument, "params."+name, "param %q: %v", name, err))
			continue
		}
		out[name] = v
	}
	for _, p := range s.Params {
		if _, set := out[p.Name]; set {
			continue
		}
		if _, bad := given[p.Name]; bad {
			continue
		}
		switch {
		case p.Required:
			errs = append(errs, sdk.Errorf(sdk.ErrInvalidArgument, "params."+p.Name, "param %q is required", p.Name))
		case p.Default != nil:
			out[p.Name] = p.Default
		default:
			out[p.Name] = zero(p.Type)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// zero is the value of a param with neither a default nor a value.
func zero(t string) any {
	switch t {
	case TypeBoolean:
		return false
	case TypeNumber:
		return int64(0)
	case TypeList:
		return []any{}
	case TypeObject:
		return map[string]any{}
	}
	return ""
}

// Coerce converts a string given on the command line or in a trigger to
// param type t.
func Coerce(t, s string) (any, error) {
	switch t {
	case TypeString, "":
		return s, nil
	case TypeBoolean:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean (want true or false)", s)
		}
		return b, nil
	case TypeNumber:
		s := strings.TrimSpace(s)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != f || f > 1.7e308 || f < -1.7e308 {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case TypeList:
		trimmed := strings.TrimSpace(s)
		if strings.HasPrefix(trimmed, "[") {
			var l []any
			if err := unmarshalNumbers([]byte(trimmed), &l); err != nil {
				return nil, fmt.Errorf("%q is not a JSON list: %v", s, err)
			}
			return fixNumbers(l), nil
		}
		if trimmed == "" {
			return []any{}, nil
		}
		parts := strings.Split(s, ",")
		l := make([]any, len(parts))
		for i, p := range parts {
			l[i] = strings.TrimSpace(p)
		}
		return l, nil
	case TypeObject:
		var m map[string]any
		if err := unmarshalNumbers([]byte(s), &m); err != nil || m == nil {
			return nil, fmt.Errorf("%q is not a JSON object", s)
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown param type %q", t)
}

// Hash returns a stable digest of the pipeline's normalized content,
// "sha256:" and 64 hex digits: the SHA-256 of its canonical JSON. The
// same content written with other key order, whitespace, quoting or
// format (YAML or JSON), or with defaults spelled out, has the same
// hash.
func (p *Pipeline) Hash() string {
	b, err := p.CanonicalJSON()
	if err != nil {
		// Every value of a parsed pipeline is JSON; this cannot happen.
		panic(fmt.Sprintf("spec: encode pipeline: %v", err))
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CanonicalJSON returns the pipeline as JSON with map keys sorted and
// no insignificant whitespace.
func (p *Pipeline) CanonicalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
