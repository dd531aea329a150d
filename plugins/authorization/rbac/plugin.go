// Package rbac is the first-party authorization plugin of Palvella:
// role-based access control. A role is a list of permissions, each
// allowing or denying methods on resource patterns; an identity has the
// roles its authentication plugin gave it (Identity.Roles).
//
// The decision:
//
//  1. An identity that is not authenticated is denied.
//  2. An identity limited to namespaces (Identity.Namespaces) is denied
//     every resource of another namespace, whatever its roles.
//  3. Every permission of every role of the identity that matches the
//     resource and method is considered; a matching Deny wins over any
//     Allow. The decision names the role and the permission's index, as
//     "developer.permissions[1]".
//  4. Nothing matched: denied, with no rule.
//
// The built-in roles are described at [BuiltinRoles]; more come from the
// configuration's `roles`.
package rbac

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Name and Version of the plugin.
const (
	Name    = "authorization-rbac"
	Version = "0.1.0"
)

// Rules that decide before any role is looked at.
const (
	// RuleIdentityStatus denies identities that are not authenticated.
	RuleIdentityStatus = "identity-status"
	// RuleNamespaceScope denies namespace-limited identities the resources
	// of other namespaces.
	RuleNamespaceScope = "namespace-scope"
)

// Plugin is the RBAC authorization plugin.
type Plugin struct {
	mu    sync.RWMutex
	roles map[string]Role
}

var _ authorization.Authorization = (*Plugin)(nil)

// New returns a plugin with the built-in roles only.
func New() *Plugin {
	roles, _ := parseConfig(nil) // the built-in roles need no checking
	return &Plugin{roles: roles}
}

// Serve runs the plugin as a plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{authorization.Service(p)}, opts...)
}

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Role-based access control: built-in admin, operator, developer and viewer roles, more from the configuration; deny wins.",
		Categories:       []sdk.Category{sdk.CategoryAuthorization},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema:     configSchema,
	}, nil
}

// Configure replaces the configured roles. On any error diagnostic the
// previous roles stay in force.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cfg map[string]any
	if req != nil {
		cfg = req.Config
	}
	roles, diags := parseConfig(cfg)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	p.mu.Lock()
	p.roles = roles
	p.mu.Unlock()
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

// Roles returns the roles in force, sorted by name.
func (p *Plugin) Roles() []Role {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]Role, 0, len(p.roles))
	for _, r := range p.roles {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Authorize decides; see the package documentation for how.
func (p *Plugin) Authorize(ctx context.Context, req *authorization.AuthorizeRequest) (*authorization.Decision, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id := req.Identity
	if !id.Authenticated() {
		return &authorization.Decision{Rule: RuleIdentityStatus, Effect: authorization.EffectDeny,
			Reason: fmt.Sprintf("the identity is %s, not authenticated", id.Status)}, nil
	}
	if ns, ok := resourceNamespace(req.Resource); ok && len(id.Namespaces) > 0 && !slices.Contains(id.Namespaces, ns) {
		return &authorization.Decision{Rule: RuleNamespaceScope, Effect: authorization.EffectDeny,
			Reason: fmt.Sprintf("%s is limited to the namespaces %s; %s is in %q", id.Name, strings.Join(id.Namespaces, ", "), req.Resource, ns)}, nil
	}

	p.mu.RLock()
	roles := p.roles
	p.mu.RUnlock()
	var allow *authorization.Decision
	for _, name := range id.Roles {
		role, ok := roles[name]
		if !ok {
			continue // a role this configuration does not define grants nothing
		}
		for i, perm := range role.Permissions {
			if !perm.matches(req.Resource, req.Method) {
				continue
			}
			rule := fmt.Sprintf("%s.permissions[%d]", role.Name, i)
			if perm.Effect == authorization.EffectDeny {
				return &authorization.Decision{Rule: rule, Effect: authorization.EffectDeny,
					Reason: fmt.Sprintf("role %s denies %s on %s", role.Name, req.Method, req.Resource)}, nil
			}
			if allow == nil {
				allow = &authorization.Decision{Allowed: true, Rule: rule, Effect: authorization.EffectAllow,
					Reason: fmt.Sprintf("role %s allows %s on %s", role.Name, req.Method, req.Resource)}
			}
		}
	}
	if allow != nil {
		return allow, nil
	}
	return &authorization.Decision{Reason: fmt.Sprintf("no permission of the roles [%s] allows %s on %s", strings.Join(id.Roles, ", "), req.Method, req.Resource)}, nil
}

func (perm Permission) matches(resource, method string) bool {
	return slices.ContainsFunc(perm.Methods, func(m string) bool { return matchMethod(m, method) }) &&
		slices.ContainsFunc(perm.Resources, func(pat string) bool { return Match(pat, resource) })
}
