// Package schema compiles the JSON Schemas plugins declare (the schema of
// a plugin's configuration, and of each of its action and job types'
// params) and checks values against them, reporting each problem with the
// path of its field and a message in the words of the pipeline reference:
//
//	path: got number, want string
//	patern: unknown field (did you mean "pattern"?)
//	plan_job: missing field
//
// Schemas are compiled with format assertions on ("format": "regex" is
// checked with Go's regexp syntax) and with no loader: a schema may not
// refer to another document, so that compiling what a plugin sent never
// reads a file or the network. Keywords the library does not know, such as
// Palvella's own x-palvella-script, are kept and ignored.
package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/palvella/palvella/core/expr"
)

// ErrRemoteRef is why a schema that refers to another document does not
// compile.
var ErrRemoteRef = errors.New("schema: a plugin's schema may not refer to another document")

// Schema is a compiled JSON Schema and the document it was compiled from.
type Schema struct {
	s   *jsonschema.Schema
	doc map[string]any
}

// Compile compiles a schema document (draft 2020-12 unless it says
// otherwise in $schema). name identifies it in errors, such as
// "action-standard/run".
func Compile(name string, doc map[string]any) (*Schema, error) {
	out, err := CompileAll(map[string]map[string]any{name: doc})
	if err != nil {
		return nil, err
	}
	return out[name], nil
}

// CompileAll compiles several schema documents by name, with one compiler
// (the draft's meta-schema is compiled once for all of them). A document
// compiled before by this process is not compiled again: a plugin that
// restarts, or several plugins declaring the same schema, share the
// compiled schema, which is never modified.
func CompileAll(docs map[string]map[string]any) (map[string]*Schema, error) {
	var c *jsonschema.Compiler
	loader := &noLoader{}
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make(map[string]*Schema, len(docs))
	for i, name := range names {
		b, err := json.Marshal(docs[name])
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		if s := cached(sum); s != nil {
			out[name] = s
			continue
		}
		if c == nil {
			c = jsonschema.NewCompiler()
			c.DefaultDraft(jsonschema.Draft2020)
			c.AssertFormat()
			c.UseLoader(loader)
		}
		// Through JSON, so that what a plugin built in Go ([]string,
		// map[string]string...) reads as what one sent over the wire.
		norm, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		url := "palvella:///schemas/" + strconv.Itoa(i) + ".json"
		if err := c.AddResource(url, norm); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			if loader.refused != "" {
				return nil, fmt.Errorf("schema %s: %w: %s", name, ErrRemoteRef, loader.refused)
			}
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		m, _ := norm.(map[string]any)
		out[name] = &Schema{s: s, doc: m}
		remember(sum, out[name])
	}
	return out, nil
}

// The compiled schemas by the sha256 of their JSON, at most maxCached.
var (
	cacheMu sync.Mutex
	cache   = map[[sha256.Size]byte]*Schema{}
)

const maxCached = 1024

func cached(sum [sha256.Size]byte) *Schema {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	return cache[sum]
}

func remember(sum [sha256.Size]byte, s *Schema) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if len(cache) >= maxCached {
		clear(cache)
	}
	cache[sum] = s
}

// noLoader refuses every document a schema refers to, and remembers the
// first.
type noLoader struct{ refused string }

func (l *noLoader) Load(url string) (any, error) {
	if l.refused == "" {
		l.refused = url
	}
	return nil, fmt.Errorf("%w (%s)", ErrRemoteRef, url)
}

// Doc returns the schema as declared, decoded from JSON. It must not be
// modified.
func (s *Schema) Doc() map[string]any { return s.doc }

// Properties returns the names of the top-level properties, sorted.
func (s *Schema) Properties() []string {
	props, _ := s.doc["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Property returns the schema of a top-level property, or nil.
func (s *Schema) Property(name string) map[string]any {
	props, _ := s.doc["properties"].(map[string]any)
	p, _ := props[name].(map[string]any)
	return p
}

// Problem is one way a value does not match a schema.
type Problem struct {
	// Path is the field, such as "vars" or "shell[0]"; empty for the
	// value itself.
	Path string
	// Message says what is wrong.
	Message string
	// Unknown is set when the field is one the schema does not allow.
	Unknown bool
	// Missing names the required field that is missing from the object
	// at Path.
	Missing string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Options tune a check.
type Options struct {
	// Deferred reports values that cannot be checked yet: a problem about
	// such a value (and only about it) is not reported. [Interpolated]
	// defers the strings that hold ${{ ... }}.
	Deferred func(v any) bool
}

// Interpolated reports a string that holds ${{ ... }}: its value is known
// only once the expressions in it are evaluated, when the run gets there.
func Interpolated(v any) bool {
	s, ok := v.(string)
	return ok && expr.HasExpressions(s)
}

// Check returns the problems of v, sorted by path, or none. v holds JSON values (maps, slices, strings, numbers of any Go
// numeric type, booleans, nil).
func (s *Schema) Check(v any, opts Options) []Problem {
	err := s.s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Message: err.Error()}}
	}
	e := &Explainer{Deferred: opts.Deferred, Suggest: func(path string) []string {
		if path == "" {
			return s.Properties()
		}
		return nil
	}}
	probs := e.Explain(v, ve)
	slices.SortStableFunc(probs, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return probs
}

// Error is a list of problems as one error, one problem a line.
type Error []Problem

func (e Error) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Explainer turns a validation error tree into problems at their paths,
// one per leaf, choosing the likely branch of an anyOf or oneOf.
type Explainer struct {
	// Message, when set, may word a leaf error its own way; "" keeps the
	// default wording.
	Message func(ve *jsonschema.ValidationError) string
	// Deferred: see Options.
	Deferred func(v any) bool
	// Suggest, when set, returns the field names the object at path may
	// have, for "did you mean" on unknown fields.
	Suggest func(path string) []string
}

// Explain returns the problems of ve, an error of validating doc.
func (e *Explainer) Explain(doc any, ve *jsonschema.ValidationError) []Problem {
	var out []Problem
	e.walk(&out, doc, ve)
	return out
}

func (e *Explainer) deferred(doc any, loc []string) bool {
	return e.Deferred != nil && e.Deferred(valueAt(doc, loc))
}

func (e *Explainer) walk(out *[]Problem, doc any, ve *jsonschema.ValidationError) {
	path := InstancePath(doc, ve.InstanceLocation)
	add := func(p Problem) { *out = append(*out, p) }
	switch k := ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		if e.deferred(doc, ve.InstanceLocation) {
			return
		}
		// Branches that failed only on the type of this value are the
		// ones the author did not mean, unless all did.
		var wants []string
		var meant []*jsonschema.ValidationError
		for _, cause := range ve.Causes {
			if t, ok := typeOnly(cause, ve.InstanceLocation); ok {
				wants = append(wants, t.Want...)
				continue
			}
			meant = append(meant, cause)
		}
		if len(meant) == 0 {
			add(Problem{Path: path, Message: fmt.Sprintf("got %s, want %s", JSONType(valueAt(doc, ve.InstanceLocation)), OrList(slices.Compact(wants)))})
			return
		}
		for _, m := range meant {
			e.walk(out, doc, m)
		}
		return
	case *kind.AdditionalProperties:
		var known []string
		if e.Suggest != nil {
			known = e.Suggest(path)
		}
		for _, p := range k.Properties {
			msg := "unknown field"
			if s := expr.Suggest(p, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			add(Problem{Path: Key(path, p), Message: msg, Unknown: true})
		}
		return
	case *kind.Required:
		for _, m := range k.Missing {
			add(Problem{Path: path, Message: fmt.Sprintf("missing field %q", m), Missing: m})
		}
		return
	}
	if len(ve.Causes) == 0 {
		if e.deferred(doc, ve.InstanceLocation) {
			return
		}
		msg := ""
		if e.Message != nil {
			msg = e.Message(ve)
		}
		if msg == "" {
			msg = LeafMessage(ve)
		}
		add(Problem{Path: path, Message: msg})
		return
	}
	for _, cause := range ve.Causes {
		e.walk(out, doc, cause)
	}
}

var printer = message.NewPrinter(language.English)

// LeafMessage says what a schema error without causes means.
func LeafMessage(ve *jsonschema.ValidationError) string {
	switch k := ve.ErrorKind.(type) {
	case *kind.Pattern:
		return fmt.Sprintf("%q does not match %s", k.Got, k.Want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
			if w == "" {
				want[i] = `""`
			}
		}
		return fmt.Sprintf("unknown value %s (want %s)", DescribeValue(k.Got), OrList(want))
	case *kind.Const:
		return fmt.Sprintf("must be %v", k.Want)
	case *kind.Format:
		if k.Want == "regex" {
			return fmt.Sprintf("invalid regular expression: %v", k.Err)
		}
		return fmt.Sprintf("%s is not a valid %s: %v", DescribeValue(k.Got), k.Want, k.Err)
	case *kind.Minimum:
		return fmt.Sprintf("must be at least %s", k.Want.RatString())
	case *kind.Maximum:
		return fmt.Sprintf("must be at most %s", k.Want.RatString())
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters", k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.Type:
		return fmt.Sprintf("got %s, want %s", k.Got, OrList(k.Want))
	case *kind.FalseSchema:
		return "not allowed"
	}
	return ve.ErrorKind.LocalizedString(printer)
}

// OrList writes a, b or c.
func OrList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// typeOnly reports whether e is, under references and groups, only a
// type mismatch at loc.
func typeOnly(e *jsonschema.ValidationError, loc []string) (*kind.Type, bool) {
	if t, ok := e.ErrorKind.(*kind.Type); ok && slices.Equal(e.InstanceLocation, loc) {
		return t, true
	}
	if len(e.Causes) == 1 {
		return typeOnly(e.Causes[0], loc)
	}
	return nil, false
}

// InstancePath renders a JSON pointer's tokens as a field path.
func InstancePath(doc any, tokens []string) string {
	path, v := "", doc
	for _, t := range tokens {
		switch x := v.(type) {
		case []any:
			i, _ := strconv.Atoi(t)
			path = Index(path, i)
			if i >= 0 && i < len(x) {
				v = x[i]
			} else {
				v = nil
			}
		case map[string]any:
			path, v = Key(path, t), x[t]
		default:
			path, v = Key(path, t), nil
		}
	}
	return path
}

func valueAt(doc any, tokens []string) any {
	v := doc
	for _, t := range tokens {
		switch x := v.(type) {
		case []any:
			i, _ := strconv.Atoi(t)
			if i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		case map[string]any:
			v = x[t]
		default:
			return nil
		}
	}
	return v
}

// JSONType names the JSON type of a decoded value.
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// DescribeValue writes a value for a message: strings quoted, lists and
// objects by their kind.
func DescribeValue(v any) string {
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

// Key appends a map key to a path: .name, or ["odd key"].
func Key(path, k string) string {
	if isPlainKey(k) {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

// Index appends a list index to a path.
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Join appends a relative path (as Key and Index write them) to a path.
func Join(path, rel string) string {
	switch {
	case rel == "":
		return path
	case path == "":
		return rel
	case strings.HasPrefix(rel, "["):
		return path + rel
	}
	return path + "." + rel
}

func isPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r != '_' && r != '-' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
