package storage

import (
	"errors"
	"path"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func TestValidateKey(t *testing.T) {
	for _, key := range []string{"a", "logs/build.log", ".hidden", "a/..b/c", "ü/€.txt", strings.Repeat("k", MaxElementLength)} {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{"", "../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a/", "a/.", `a\b`, "a\x00b", "a\nb", "\xff",
		strings.Repeat("k", MaxElementLength+1), strings.Repeat("k/", MaxKeyLength/2+1)} {
		err := ValidateKey(key)
		var typed *sdk.Error
		if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != "key" {
			t.Errorf("ValidateKey(%q) = %v, want sdk.ErrInvalidArgument about key", key, err)
		}
	}
}

func TestListPrefixes(t *testing.T) {
	scope := Scope{Kind: ScopeRun, Namespace: "n", Pipeline: "p", Run: "r"}
	for _, prefix := range []string{"", "logs", "logs/", "logs/bu", "logs/.", "logs/..", "."} {
		if _, err := (&ListRequest{Scope: scope, Prefix: prefix}).Validate(); err != nil {
			t.Errorf("prefix %q refused: %v", prefix, err)
		}
	}
	for _, prefix := range []string{"/", "/logs", "../", "a/../", "a//", `a\b/`} {
		if _, err := (&ListRequest{Scope: scope, Prefix: prefix}).Validate(); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
}

func TestScopeParts(t *testing.T) {
	s := Scope{Kind: ScopeJob, Namespace: "n", Pipeline: "p", Run: "r", Job: "j"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Parts(), "/"); got != "n/p/r/j" {
		t.Fatalf("Parts = %s", got)
	}
	s = Scope{Kind: ScopePipeline, Namespace: "n", Pipeline: "p"}
	if got := strings.Join(s.Parts(), "/"); got != "n/p" {
		t.Fatalf("Parts = %s", got)
	}
}

// FuzzValidateKey checks that an accepted key is a clean relative path that
// cannot climb out of the folder it is joined to.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "logs/x.log", "../x", "/etc/passwd", "a/../../b", "a//b", `a\b`, "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		joined := path.Join("scope", key)
		if path.Clean(key) != key || !strings.HasPrefix(joined, "scope/") || strings.TrimPrefix(joined, "scope/") != key {
			t.Fatalf("accepted key %q is not confined (joined: %q)", key, joined)
		}
		if strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("accepted key %q holds a backslash or NUL", key)
		}
	})
}
