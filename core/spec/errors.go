package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/palvella/palvella/core/schema"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// ErrInvalid is matched (errors.Is) by every problem this package
// reports about a pipeline file, as is sdk.ErrInvalidArgument.
var ErrInvalid = errors.New("spec: invalid pipeline")

// Error is one problem in a pipeline file.
type Error struct {
	// File is the name the file was parsed under.
	File string
	// Line is the 1-based line of the field, 0 when unknown.
	Line int
	// Path is the field path, such as spec.jobs[1].requires[0]; empty
	// for the whole file.
	Path string
	// Message says what is wrong.
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Is reports ErrInvalid and sdk.ErrInvalidArgument.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid || target == sdk.ErrInvalidArgument
}

// Errors are all the problems found in a pipeline file, in the order of
// the file.
type Errors []*Error

func (l Errors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the problems, so errors.As finds an *Error.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// errs collects problems with their lines.
type errs struct {
	file  string
	lines map[string]int
	list  Errors
}

// add records a problem about path, placed at the line of path or of its
// closest parent the file has.
func (c *errs) add(path, format string, args ...any) {
	c.list = append(c.list, &Error{File: c.file, Line: lineOf(c.lines, path), Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// lineOf returns the line of path, or of its nearest ancestor.
func lineOf(lines map[string]int, path string) int {
	for {
		if l, ok := lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
}

// key appends a map key to a path: .name, or ["odd key"].
func key(path, k string) string { return schema.Key(path, k) }

// index appends a list index to a path.
func index(path string, i int) string { return schema.Index(path, i) }
