package api

import (
	"fmt"
	"slices"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// RuleNamespaceScope is the rule named when the API refuses an identity
// limited to namespaces something outside them.
const RuleNamespaceScope = "namespace-scope"

// Limited reports whether an identity is limited to namespaces.
func Limited(id *authentication.Identity) bool { return id != nil && len(id.Namespaces) > 0 }

// InScope reports whether an identity may reach the namespace ns: it is
// not limited, or ns is one of its namespaces. The empty namespace (a
// global thing) is in the scope of unlimited identities only.
func InScope(id *authentication.Identity, ns string) bool {
	if !Limited(id) {
		return true
	}
	return ns != "" && slices.Contains(id.Namespaces, ns)
}

// ResourceNamespace returns the namespace of a resource string: the first
// segment of the name of "kind:namespace/name..." resources, and "" for
// resources of no namespace ("credential:ci-key", "token:*").
func ResourceNamespace(res string) string {
	_, name, ok := strings.Cut(res, ":")
	if !ok {
		return ""
	}
	ns, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return ns
}

// OutOfScope is the error of a limited identity reaching outside its
// namespaces.
func OutOfScope(id *authentication.Identity, what string) error {
	return sdk.Errorf(sdk.ErrPermissionDenied, "", "%s may not reach %s: it is limited to the namespaces %s (%s)",
		id.Name, what, strings.Join(id.Namespaces, ", "), RuleNamespaceScope)
}

// keepInScope refuses an identity limited to namespaces what a route's
// scope keeps from it. Owned and filtered routes are narrowed by their
// handlers, which know what belongs to which namespace.
func (s *server) keepInScope(c *call, rt Route, res string) error {
	if !Limited(c.id) {
		return nil
	}
	switch rt.Scope {
	case ScopeNamespaced:
		if ns := ResourceNamespace(res); !InScope(c.id, ns) {
			return OutOfScope(c.id, res)
		}
	case ScopeServer:
		return OutOfScope(c.id, res+" (it belongs to the whole server)")
	case ScopeOwned, ScopeFiltered, ScopeCaller:
	default:
		return fmt.Errorf("route %s %s has no namespace scope", rt.Method, rt.Pattern)
	}
	return nil
}

// resolveCredential fills {credential}: the credential of the path as its
// owner has it.
func (s *server) resolveCredential(c *call, tmpl string) error {
	if !strings.Contains(tmpl, "{credential}") {
		return nil
	}
	name := c.r.PathValue("name")
	c.credential = name
	sec, ok := s.b.(Security)
	if !ok {
		return nil
	}
	ns, err := sec.CredentialNamespace(c.r.Context(), name)
	if err != nil {
		return fmt.Errorf("look up credential %s: %w", name, err)
	}
	if ns != "" {
		c.credential = ns + "/" + name
	}
	return nil
}
