package expr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Part is a piece of a string with ${{ ... }} in it: either literal text
// or an expression.
type Part struct {
	// Text is the literal text, or the expression's source (without the
	// braces) when Expr is true.
	Text string
	// Expr is true for an expression.
	Expr bool
	// Offset is the byte offset of the part in the string.
	Offset int
}

// ErrTemplate is wrapped by the errors of [Split] about the braces of
// ${{ ... }} themselves.
var ErrTemplate = errors.New("expr: invalid ${{ }} template")

type templateError struct{ msg string }

func (e *templateError) Error() string { return e.msg }
func (e *templateError) Unwrap() error { return ErrTemplate }

const open, closing = "${{", "}}"

// Split cuts s into literal text and ${{ ... }} expressions. An
// expression ends at the first }} outside a quoted string. There is no
// escape: write ${{ "${{" }} for a literal ${{.
func Split(s string) ([]Part, error) {
	var parts []Part
	pos := 0
	for {
		i := strings.Index(s[pos:], open)
		if i < 0 {
			if pos < len(s) {
				parts = append(parts, Part{Text: s[pos:], Offset: pos})
			}
			return parts, nil
		}
		start := pos + i
		if i > 0 {
			parts = append(parts, Part{Text: s[pos:start], Offset: pos})
		}
		body := start + len(open)
		end := closeOf(s, body)
		if end < 0 {
			return nil, &templateError{fmt.Sprintf("the ${{ at byte %d has no closing }}", start)}
		}
		parts = append(parts, Part{Text: s[body:end], Expr: true, Offset: start})
		pos = end + len(closing)
	}
}

// closeOf returns the index of the }} that ends the expression starting
// at from, skipping quoted strings, or -1.
func closeOf(s string, from int) int {
	var quote byte
	for i := from; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '}' && strings.HasPrefix(s[i:], closing):
			return i
		}
	}
	return -1
}

// HasExpressions reports whether s contains ${{.
func HasExpressions(s string) bool { return strings.Contains(s, open) }

// CompileTemplate checks every ${{ ... }} in s with [Compile].
func CompileTemplate(s string, scope *Scope) error {
	parts, err := Split(s)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range parts {
		if !p.Expr {
			continue
		}
		if _, err := compile(p.Text, scope, &budget{}, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Interpolate replaces every ${{ ... }} in s with its value in c: a
// string as it is, nil as nothing, a boolean or a number in its JSON
// form, and a list or a map as JSON.
func Interpolate(s string, c Context) (string, error) {
	return InterpolateMap(s, c.Map())
}

// InterpolateMap is [Interpolate] over a map in the shape of
// [Context.Map].
func InterpolateMap(s string, env map[string]any) (string, error) {
	if !HasExpressions(s) {
		return s, nil
	}
	parts, err := Split(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if !p.Expr {
			b.WriteString(p.Text)
			continue
		}
		v, err := evalMap(p.Text, env, true)
		if err != nil {
			return "", err
		}
		text, err := Render(v)
		if err != nil {
			return "", &Error{Kind: ErrEval, Expr: strings.TrimSpace(p.Text), Template: true, Message: err.Error()}
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

// InterpolateAll returns a copy of v with [Interpolate] applied to every
// string in it, through maps and lists; other values are kept.
func InterpolateAll(v any, c Context) (any, error) {
	return interpolateAll(v, c.Map(), "")
}

func interpolateAll(v any, env map[string]any, path string) (any, error) {
	switch v := v.(type) {
	case string:
		out, err := InterpolateMap(v, env)
		if err != nil && path != "" {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return out, err
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := interpolateAll(e, env, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := interpolateAll(e, env, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Render is how a value appears in a string: a string as it is, nil as
// nothing, anything else as JSON of at most [MaxValueBytes] bytes.
func Render(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return strconv.FormatFloat(v, 'g', -1, 64), nil
		}
	case float32:
		return Render(float64(v))
	}
	var b strings.Builder
	if err := renderJSON(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// renderJSON writes v as JSON (map keys sorted) and stops as soon as the
// output passes MaxValueBytes, so a value built by sharing cannot make it
// run long.
func renderJSON(b *strings.Builder, v any) error {
	if b.Len() > MaxValueBytes {
		return fmt.Errorf("value renders to more than %d bytes", MaxValueBytes)
	}
	switch v := v.(type) {
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := renderJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := renderJSON(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := renderJSON(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			b.WriteString("null")
			return nil
		}
		b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("cannot render %s: %w", typeName(v), err)
		}
		b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	if b.Len() > MaxValueBytes {
		return fmt.Errorf("value renders to more than %d bytes", MaxValueBytes)
	}
	return nil
}
