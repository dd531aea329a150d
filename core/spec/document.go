package spec

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Document is a YAML or JSON file other than a pipeline (the server's
// configuration, for one) read the way pipeline files are: as JSON values,
// checked against a JSON Schema, with the line of every field kept so that
// later checks can place their errors too.
type Document struct {
	// Value is the file as JSON values: map[string]any, []any, string,
	// int64, float64, bool or nil.
	Value any
	file  string
	lines map[string]int
}

// ReadDocument parses data (YAML or JSON, one document, at most
// MaxFileBytes) and validates it against schema. file names the file in
// errors. The error is an [Errors] listing every problem with its line:
// unknown fields, wrong types, missing fields.
func ReadDocument(file string, data []byte, schema *jsonschema.Schema) (*Document, error) {
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
	if schema != nil {
		if err := schema.Validate(doc); err != nil {
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				return nil, fmt.Errorf("validate %s: %w", file, err)
			}
			schemaErrors(c, doc, ve)
			slices.SortStableFunc(c.list, func(a, b *Error) int { return a.Line - b.Line })
			return nil, c.err()
		}
	}
	return &Document{Value: doc, file: file, lines: c.lines}, nil
}

// Errorf returns a problem about the field at path (such as
// "engines[1].type"), placed on its line or its nearest parent's.
func (d *Document) Errorf(path, format string, args ...any) *Error {
	return &Error{File: d.file, Line: d.Line(path), Path: path, Message: fmt.Sprintf(format, args...)}
}

// Line is the line of the field at path, or of its nearest parent; 0 when
// the file has neither.
func (d *Document) Line(path string) int { return lineOf(d.lines, path) }

// File is the name the document was read under.
func (d *Document) File() string { return d.file }

// Key and Index build the paths Errorf and Line take.
func Key(path, k string) string { return key(path, k) }

// Index appends a list index to a path.
func Index(path string, i int) string { return index(path, i) }

// CompileSchema compiles a JSON Schema document given as JSON under url.
func CompileSchema(url string, schemaJSON []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytesReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	return c.Compile(url)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Errorf returns a problem about a field of the pipeline (such as
// "spec.jobs[0].engine"), placed on its line in the file it was read from,
// for checks made outside this package.
func (p *Pipeline) Errorf(path, format string, args ...any) *Error {
	return &Error{File: p.file, Line: lineOf(p.lines, path), Path: path, Message: fmt.Sprintf(format, args...)}
}
