package spec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"gopkg.in/yaml.v3"

	"github.com/palvella/palvella/core/schema"
)

// Limits of a pipeline file.
const (
	// MaxFileBytes is the largest pipeline file.
	MaxFileBytes = 1 << 20
	// maxNodes bounds the values of a file once aliases are expanded.
	maxNodes = 100_000
	// maxDepth bounds nesting.
	maxDepth = 64
)

//go:embed schema/pipeline.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema of pipeline files (draft 2020-12).
func Schema() []byte { return bytes.Clone(schemaJSON) }

var compiledSchema = sync.OnceValue(func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic(fmt.Sprintf("spec: embedded schema: %v", err))
	}
	c := jsonschema.NewCompiler()
	const url = "https://palvella.dev/schemas/pipeline/v1.json"
	if err := c.AddResource(url, doc); err != nil {
		panic(fmt.Sprintf("spec: embedded schema: %v", err))
	}
	return c.MustCompile(url)
})

// Load parses a pipeline file and validates it with opts.
func Load(file string, data []byte, opts Options) (*Pipeline, error) {
	p, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Parse reads a pipeline file in YAML or JSON, checks it against
// [Schema] and returns it with defaults applied. file names the file in
// errors. The error is an [Errors] listing every problem.
func Parse(file string, data []byte) (*Pipeline, error) {
	c := &errs{file: file, lines: map[string]int{}}
	if len(data) > MaxFileBytes {
		c.add("", "file is %d bytes, more than %d", len(data), MaxFileBytes)
		return nil, c.err()
	}
	root, err := readYAML(data)
	if err != nil {
		c.list = append(c.list, yamlError(file, err))
		return nil, c.err()
	}
	conv := &converter{errs: c}
	doc := conv.value(root, "", 0)
	if len(c.list) > 0 {
		return nil, c.err()
	}
	if err := compiledSchema().Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("validate %s against the pipeline schema: %w", file, err)
		}
		schemaErrors(c, doc, ve)
		slices.SortStableFunc(c.list, func(a, b *Error) int { return a.Line - b.Line })
		return nil, c.err()
	}
	p, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", file, err)
	}
	p.file, p.lines = file, c.lines
	p.normalize()
	return p, nil
}

// readYAML returns the single document of data.
func readYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: a pipeline file holds one document", next.Line)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError places a YAML syntax error on its line.
func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Message: m[2]}
	}
	return &Error{File: file, Message: strings.TrimPrefix(msg, "yaml: ")}
}

// converter turns a YAML node into JSON values (map[string]any, []any,
// string, int64, float64, bool, nil), recording the line of every path.
type converter struct {
	errs  *errs
	nodes int
}

func (c *converter) value(n *yaml.Node, path string, depth int) any {
	c.nodes++
	if c.nodes > maxNodes {
		if c.nodes == maxNodes+1 {
			c.errs.add(path, "the file expands to more than %d values", maxNodes)
		}
		return nil
	}
	if depth > maxDepth {
		c.errs.add(path, "nested more than %d levels deep", maxDepth)
		return nil
	}
	if _, ok := c.errs.lines[path]; !ok {
		c.errs.lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.value(n.Content[0], path, depth)
	case yaml.AliasNode:
		return c.value(n.Alias, path, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			out = append(out, c.value(e, index(path, i), depth+1))
		}
		return out
	case yaml.MappingNode:
		return c.mapping(n, path, depth)
	case yaml.ScalarNode:
		return c.scalar(n, path)
	}
	c.errs.add(path, "unsupported YAML node")
	return nil
}

func (c *converter) mapping(n *yaml.Node, path string, depth int) map[string]any {
	out := map[string]any{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!int" && k.ShortTag() != "!!bool" && k.ShortTag() != "!!float") {
			c.errs.lines[path] = k.Line
			c.errs.add(path, "a key must be a string")
			continue
		}
		p := key(path, k.Value)
		if _, dup := out[k.Value]; dup {
			c.errs.list = append(c.errs.list, &Error{File: c.errs.file, Line: k.Line, Path: p,
				Message: fmt.Sprintf("duplicate key (first at line %d)", c.errs.lines[p])})
			continue
		}
		c.errs.lines[p] = k.Line
		out[k.Value] = c.value(v, p, depth+1)
	}
	// Merge keys (<<: *anchor) add the keys the mapping does not set.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			merged, ok := c.value(s, path, depth+1).(map[string]any)
			if !ok {
				c.errs.add(path, "a merge key (<<) needs a mapping")
				continue
			}
			for k, v := range merged {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	return out
}

func (c *converter) scalar(n *yaml.Node, path string) any {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.errs.add(path, "invalid boolean %q", n.Value)
		}
		return b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			c.errs.add(path, "invalid number %q", n.Value)
		}
		return f
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			c.errs.add(path, "%q is not a finite number", n.Value)
			return nil
		}
		return f
	}
	c.errs.add(path, "unsupported YAML tag %s", n.Tag)
	return nil
}

// schemaErrors turns a validation error tree into problems at their
// paths, one per leaf (see schema.Explainer), placed on their lines.
func schemaErrors(c *errs, doc any, ve *jsonschema.ValidationError) {
	e := &schema.Explainer{Message: pipelineMessage}
	for _, p := range e.Explain(doc, ve) {
		c.add(p.Path, "%s", p.Message)
	}
}

// pipelineMessage words the errors of the pipeline schema's own
// definitions in the words of the pipeline reference.
func pipelineMessage(ve *jsonschema.ValidationError) string {
	k, ok := ve.ErrorKind.(*kind.Pattern)
	if !ok {
		return ""
	}
	switch {
	case strings.HasSuffix(ve.SchemaURL, "/$defs/name"):
		return fmt.Sprintf("%q is not a valid name (lowercase letters, digits, - and _, starting with a letter or digit)", k.Got)
	case strings.HasSuffix(ve.SchemaURL, "/$defs/duration"):
		return fmt.Sprintf("%q is not a duration (such as 90s, 10m or 1h30m)", k.Got)
	}
	return ""
}

// decode turns schema-valid JSON values into a Pipeline.
func decode(doc any) (*Pipeline, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var p Pipeline
	if err := unmarshalNumbers(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// unmarshalNumbers decodes JSON keeping integers as int64 and other
// numbers as float64 in untyped values.
func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	fixNumbersIn(v)
	return nil
}

// fixNumbersIn rewrites the json.Number values in the untyped fields of
// a decoded value.
func fixNumbersIn(v any) {
	switch v := v.(type) {
	case *Pipeline:
		for i := range v.Spec.Params {
			v.Spec.Params[i].Default = fixNumbers(v.Spec.Params[i].Default)
		}
		fixEngine(v.Spec.Engine)
		for i := range v.Spec.Jobs {
			j := &v.Spec.Jobs[i]
			fixEngine(j.Engine)
			j.Params = fixMap(j.Params)
			j.With = fixMap(j.With)
			for k := range j.Actions {
				j.Actions[k].Params = fixMap(j.Actions[k].Params)
			}
		}
	case *map[string]any:
		*v = fixMap(*v)
	}
}

func fixEngine(e *Engine) {
	if e != nil {
		e.Options = fixMap(e.Options)
	}
}

func fixMap(m map[string]any) map[string]any {
	for k, v := range m {
		m[k] = fixNumbers(v)
	}
	return m
}

func fixNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		return fixMap(v)
	case []any:
		for i := range v {
			v[i] = fixNumbers(v[i])
		}
		return v
	}
	return v
}

// normalize applies defaults, so that a parsed pipeline says everything
// explicitly and equal content has equal hashes.
func (p *Pipeline) normalize() {
	if p.Metadata.Namespace == "" {
		p.Metadata.Namespace = DefaultNamespace
	}
	p.Metadata.Labels = nilIfEmpty(p.Metadata.Labels)
	s := &p.Spec
	s.Timeout = normDuration(s.Timeout)
	s.Env = nilIfEmpty(s.Env)
	for i := range s.Params {
		if s.Params[i].Type == "" {
			s.Params[i].Type = TypeString
		}
	}
	for i := range s.Triggers {
		s.Triggers[i].Every = normDuration(s.Triggers[i].Every)
		s.Triggers[i].Params = nilIfEmpty(s.Triggers[i].Params)
	}
	for i := range s.Jobs {
		j := &s.Jobs[i]
		if j.When == "" {
			j.When = WhenSuccess
		}
		j.Timeout = normDuration(j.Timeout)
		j.Params, j.With = nilIfEmpty(j.Params), nilIfEmpty(j.With)
		for _, es := range [][]StorageEntry{j.Storage.Get, j.Storage.Put} {
			for k := range es {
				if es[k].Scope == "" {
					es[k].Scope = ScopeRun
				}
			}
		}
		for k := range j.Actions {
			a := &j.Actions[k]
			if a.Type == "" && a.Run != "" {
				a.Type = "run"
			}
			if a.OnSuccess == "" {
				a.OnSuccess = OutcomeContinue
			}
			if a.OnFailure == "" {
				a.OnFailure = OutcomeFail
			}
			a.Timeout = normDuration(a.Timeout)
			a.Env = nilIfEmpty(a.Env)
		}
	}
}

// nilIfEmpty drops empty maps, which the file may or may not spell out.
func nilIfEmpty[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return m
}

// normDuration writes a valid duration as time.Duration prints it.
func normDuration(d Duration) Duration {
	if d == "" {
		return d
	}
	v, err := time.ParseDuration(string(d))
	if err != nil || v <= 0 {
		return d
	}
	return Duration(v.String())
}
