package owner_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/owner"
)

func TestParsePattern(t *testing.T) {
	for in, want := range map[string]string{"acme-*": "acme-*", "acme-": "acme-*", "engine-acme": "engine-acme", "e?gine-*": "e?gine-*"} {
		if got, err := owner.ParsePattern(in); err != nil || got != want {
			t.Errorf("ParsePattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, says := range map[string]string{"": "empty", "*": "every name", "-*": "every name", "Acme-*": "not allowed", "acme/*": "not allowed",
		"acme-[a]": "not allowed", strings.Repeat("a", 65): "longer than 64"} {
		_, err := owner.ParsePattern(in)
		var re *registry.Error
		if !errors.Is(err, registry.ErrInvalidArgument) || !errors.As(err, &re) || re.Field != "names" || !strings.Contains(re.Detail, says) {
			t.Errorf("ParsePattern(%q) = %v; want a refusal of names saying %q", in, err, says)
		}
	}
}

func TestMayServe(t *testing.T) {
	rules := owner.Rules{
		Claims:   []owner.Claim{{Registry: "public", FirstParty: true}, {Registry: "acme", Names: []string{"acme-*"}}, {Registry: "open"}},
		Reserved: func(n string) bool { return n == "engine-local" },
	}
	for _, tc := range []struct {
		reg, name string
		ok        bool
	}{
		{"public", "engine-local", true}, {"acme", "engine-local", false}, {"open", "engine-local", false},
		{"acme", "acme-deploy", true}, {"public", "acme-deploy", false}, {"open", "acme-deploy", false},
		{"acme", "engine-x", false}, {"open", "engine-x", true}, {"public", "engine-x", true}, {"gone", "engine-x", false},
	} {
		err := rules.MayServe(tc.reg, tc.name)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, registry.ErrNotOwner) {
			t.Errorf("MayServe(%s, %s) = %v, want ok=%v", tc.reg, tc.name, err, tc.ok)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"acme-*", "acme-", "a?c", "[", "*", "x\\", "ä-*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := owner.ParsePattern(s)
		if err != nil {
			var re *registry.Error
			if !errors.As(err, &re) || re.Field != "names" || re.Detail == "" {
				t.Fatalf("refusal without field and detail: %v", err)
			}
			return
		}
		if _, err := path.Match(p, "x"); err != nil {
			t.Fatalf("accepted %q yields a bad pattern %q", s, p)
		}
		if q, err := owner.ParsePattern(p); err != nil || q != p {
			t.Fatalf("%q -> %q is not stable: %q, %v", s, p, q, err)
		}
		if owner.Match([]string{p}, "") {
			t.Fatalf("pattern %q matches the empty name", p)
		}
	})
}
