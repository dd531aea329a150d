package storage

import (
	"strings"
	"unicode/utf8"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Limits every implementation enforces.
const (
	// MaxKeyLength is the longest key, in bytes.
	MaxKeyLength = 1024
	// MaxElementLength is the longest key element or scope part, in bytes.
	MaxElementLength = 255
	// MaxPageSize is the largest page List returns.
	MaxPageSize = 1000
	// DefaultPageSize is used when a ListRequest gives none.
	DefaultPageSize = 100
)

// ValidateKey checks that key is a relative, slash-separated path whose
// elements are neither empty, "." nor "..", without backslashes or control
// characters. Such a key, joined under its scope's folder, stays inside it.
func ValidateKey(key string) error {
	return validatePath("key", key)
}

func validatePath(field, p string) error {
	if p == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must not be empty")
	}
	if len(p) > MaxKeyLength {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "is %d bytes long, the limit is %d", len(p), MaxKeyLength)
	}
	if strings.HasPrefix(p, "/") {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must be relative, not start with /")
	}
	for elem := range strings.SplitSeq(p, "/") {
		if err := validateElement(field, elem); err != nil {
			return err
		}
	}
	return nil
}

// validateElement checks one path element or scope part.
func validateElement(field, e string) error {
	switch {
	case e == "":
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "has an empty path element")
	case e == "." || e == "..":
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "has a %q path element", e)
	case len(e) > MaxElementLength:
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "has a path element of %d bytes, the limit is %d", len(e), MaxElementLength)
	case !utf8.ValidString(e):
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "is not valid UTF-8")
	case strings.ContainsAny(e, `/\`):
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must not contain a slash or a backslash")
	case strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "contains a control character")
	}
	return nil
}

// ValidateKind checks a scope kind.
func ValidateKind(field string, k ScopeKind) error {
	if k < ScopePipeline || k > ScopeJob {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must be pipeline, run or job")
	}
	return nil
}

// Validate checks that the parts the scope's kind needs are set, each a
// single path element, and that the others are empty. Errors name the
// field as "scope.kind", "scope.namespace", "scope.pipeline", "scope.run"
// or "scope.job".
func (s Scope) Validate() error {
	if err := ValidateKind("scope.kind", s.Kind); err != nil {
		return err
	}
	parts := []struct {
		field, value string
		needed       bool
	}{
		{"scope.namespace", s.Namespace, true},
		{"scope.pipeline", s.Pipeline, true},
		{"scope.run", s.Run, s.Kind >= ScopeRun},
		{"scope.job", s.Job, s.Kind == ScopeJob},
	}
	for _, p := range parts {
		if !p.needed {
			if p.value != "" {
				return sdk.Errorf(sdk.ErrInvalidArgument, p.field, "must be empty in a %s scope", s.Kind)
			}
			continue
		}
		if err := validateElement(p.field, p.value); err != nil {
			return err
		}
	}
	return nil
}

// Parts returns the scope's parts in order: namespace, pipeline, then run
// and job when the kind has them. Call Validate first.
func (s Scope) Parts() []string {
	out := []string{s.Namespace, s.Pipeline}
	if s.Kind >= ScopeRun {
		out = append(out, s.Run)
	}
	if s.Kind == ScopeJob {
		out = append(out, s.Job)
	}
	return out
}

// Validate checks the scope and the key.
func (r ObjectRef) Validate() error {
	if err := r.Scope.Validate(); err != nil {
		return err
	}
	return ValidateKey(r.Key)
}

// Validate checks a list request and returns the page size to use.
func (r *ListRequest) Validate() (pageSize int, err error) {
	if err := r.Scope.Validate(); err != nil {
		return 0, err
	}
	if err := validatePrefix(r.Prefix); err != nil {
		return 0, err
	}
	switch {
	case r.PageSize < 0:
		return 0, sdk.Errorf(sdk.ErrInvalidArgument, "pageSize", "must not be negative")
	case r.PageSize == 0:
		return DefaultPageSize, nil
	case r.PageSize > MaxPageSize:
		return MaxPageSize, nil
	}
	return r.PageSize, nil
}

// validatePrefix checks a list prefix: the elements before its last "/"
// must be valid key elements; the last one may be partial or empty.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLength {
		return sdk.Errorf(sdk.ErrInvalidArgument, "prefix", "is %d bytes long, the limit is %d", len(prefix), MaxKeyLength)
	}
	if strings.HasPrefix(prefix, "/") {
		return sdk.Errorf(sdk.ErrInvalidArgument, "prefix", "must be relative, not start with /")
	}
	elems := strings.Split(prefix, "/")
	for _, e := range elems[:len(elems)-1] {
		if err := validateElement("prefix", e); err != nil {
			return err
		}
	}
	last := elems[len(elems)-1]
	if last != "" && last != "." && last != ".." {
		return validateElement("prefix", last)
	}
	return nil
}
