// Package owner decides which configured registry may serve a plugin name.
//
// Registry order never decides who owns a name (that is how dependency
// confusion and takeover of first-party names happen). Instead:
//
//   - A first-party name (a plugin compiled into palvella, or one the
//     first-party registry's root marks official) may be served only by a
//     registry whose index is signed by the first-party root.
//   - A registry added with name patterns (--names 'acme-*') claims those
//     names: a registry added without patterns (an open registry, such as
//     the public one) may not serve them.
//   - Otherwise every open registry may serve the name.
//
// When more than one registry may serve a name and lists it, the caller
// must choose one; the choice is recorded in the lock file.
package owner

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/palvella/palvella/registry"
)

// MaxPatterns bounds how many name patterns one registry may claim.
const MaxPatterns = 64

// ParsePattern checks a name pattern given by a user and returns it in the
// form Match uses. "acme-*" and "engine-?cme" are path.Match patterns over
// a-z, 0-9 and "-"; a prefix ending in "-" (such as "acme-") means every
// name that starts with it; anything else is one exact name.
func ParsePattern(p string) (string, error) {
	if p == "" {
		return "", registry.Errorf(registry.ErrInvalidArgument, "names", "a name pattern is empty")
	}
	if len(p) > 64 {
		return "", registry.Errorf(registry.ErrInvalidArgument, "names", fmt.Sprintf("pattern %q is longer than 64 characters", p))
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '*' || r == '?') {
			return "", registry.Errorf(registry.ErrInvalidArgument, "names",
				fmt.Sprintf("pattern %q: %q is not allowed (use a-z, 0-9, -, * and ?)", p, r))
		}
	}
	if strings.Trim(p, "*?-") == "" {
		return "", registry.Errorf(registry.ErrInvalidArgument, "names",
			fmt.Sprintf("pattern %q claims every name; leave --names out for an open registry", p))
	}
	if !strings.ContainsAny(p, "*?") && strings.HasSuffix(p, "-") {
		p += "*"
	}
	if _, err := path.Match(p, "x"); err != nil {
		return "", registry.Errorf(registry.ErrInvalidArgument, "names", fmt.Sprintf("pattern %q: %v", p, err))
	}
	return p, nil
}

// Match reports whether name matches one of patterns.
func Match(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Claim is what one configured registry may serve.
type Claim struct {
	// Registry is the configured name.
	Registry string
	// Names are the patterns the registry was added for; empty means an
	// open registry.
	Names []string
	// FirstParty is true when the registry's index is verified with the
	// first-party root key (the public registry or a mirror of it).
	FirstParty bool
}

// Rules are the claims of every configured registry and the first-party names.
type Rules struct {
	Claims []Claim
	// Reserved reports whether a name is first-party.
	Reserved func(name string) bool
}

func (r Rules) claim(reg string) *Claim {
	for i := range r.Claims {
		if r.Claims[i].Registry == reg {
			return &r.Claims[i]
		}
	}
	return nil
}

// MayServe returns nil when registry reg may serve name, and otherwise an
// *registry.Error of kind ErrNotOwner saying who may.
func (r Rules) MayServe(reg, name string) error {
	c := r.claim(reg)
	if c == nil {
		return &registry.Error{Kind: registry.ErrNotOwner, Registry: reg, Plugin: name, Detail: "the registry is not configured"}
	}
	if r.Reserved != nil && r.Reserved(name) {
		if c.FirstParty {
			return nil
		}
		return &registry.Error{Kind: registry.ErrNotOwner, Registry: reg, Plugin: name,
			Detail: "it is a first-party name, which only a registry signed by the public registry's root key may serve",
			Hint:   "install it from the public registry (or a mirror of it pinned to the same key)"}
	}
	if len(c.Names) > 0 {
		if Match(c.Names, name) {
			return nil
		}
		return &registry.Error{Kind: registry.ErrNotOwner, Registry: reg, Plugin: name,
			Detail: "the registry was added for names matching " + strings.Join(c.Names, ", "),
			Hint:   "re-add the registry with a wider --names if it should serve this name"}
	}
	var owners []string
	for _, o := range r.Claims {
		if len(o.Names) > 0 && Match(o.Names, name) {
			owners = append(owners, o.Registry)
		}
	}
	if len(owners) > 0 {
		return &registry.Error{Kind: registry.ErrNotOwner, Registry: reg, Plugin: name,
			Detail: "the name belongs to registry " + strings.Join(owners, ", ") + ", which was added for it"}
	}
	return nil
}

// Servers returns, of the registries in lists (those whose index lists
// name), the ones that may serve it, in configuration order, and the
// refusals of the others.
func (r Rules) Servers(name string, lists []string) (may []string, refused []error) {
	for _, c := range r.Claims {
		if !slices.Contains(lists, c.Registry) {
			continue
		}
		if err := r.MayServe(c.Registry, name); err != nil {
			refused = append(refused, err)
			continue
		}
		may = append(may, c.Registry)
	}
	return may, refused
}
