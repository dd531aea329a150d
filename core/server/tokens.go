package server

// Tokens: the API's token routes, served through the authentication plugin.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/core/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Bootstrap creates the first management token, once.
func (s *security) Bootstrap(ctx context.Context) (*api.NewToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server listens on loopback and keeps its management token in PALVELLA_HOME/%s; use that one", CLIConfigFile)
	}
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := issuer.ListTokens(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("look for earlier tokens: %w", err)
	}
	if len(existing) > 0 {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server has issued tokens already: bootstrap works once; ask an admin for a token (`palvella token create`)")
	}
	t, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: BootstrapOwner, Description: "management token from `palvella token bootstrap`", Roles: []string{"admin"}})
	if err != nil {
		return nil, err
	}
	return &api.NewToken{Token: t.Token, TokenMeta: t.Meta}, nil
}

var ownerRE = sized(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`, 128)

// CreateToken issues a token whose roles, namespaces and lifetime do not
// exceed the caller's.
func (s *security) CreateToken(ctx context.Context, caller *authentication.Identity, req api.TokenRequest) (*api.NewToken, error) {
	if !caller.Authenticated() {
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "no authenticated caller")
	}
	if !ownerRE.MatchString(req.Name) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "name", "%q is not a token name: 1 to 128 letters, digits, '.', '_', '@' or '-'", req.Name)
	}
	if len(req.Description) > 1024 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "description", "longer than 1024 characters")
	}
	if len(req.Roles) == 0 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "roles", "give the token at least one role")
	}
	var expires time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "expiresIn", "%q is not a positive duration such as 720h", req.ExpiresIn)
		}
		expires = d
	}
	now := s.now()
	if !caller.ExpiresAt.IsZero() && (expires == 0 || now.Add(expires).After(caller.ExpiresAt)) {
		return nil, sdk.Errorf(sdk.ErrPermissionDenied, "expiresIn", "a token may not outlive the token that creates it (%s expires at %s)", caller.Name, caller.ExpiresAt.UTC().Format(time.RFC3339))
	}
	for i, role := range req.Roles {
		if slices.Contains(caller.Roles, role) {
			continue
		}
		d, err := s.authz.Authorize(ctx, caller, "role:"+role, authorization.MethodWrite)
		if err != nil {
			return nil, fmt.Errorf("authorize granting role %q: %w", role, err)
		}
		if d == nil || !d.Allowed {
			return nil, sdk.Errorf(sdk.ErrPermissionDenied, fmt.Sprintf("roles[%d]", i), "%s may not grant the role %q: it does not hold it", caller.Name, role)
		}
	}
	namespaces := req.Namespaces
	if len(caller.Namespaces) > 0 {
		if len(namespaces) == 0 {
			namespaces = caller.Namespaces
		}
		for i, ns := range namespaces {
			if !slices.Contains(caller.Namespaces, ns) {
				return nil, sdk.Errorf(sdk.ErrPermissionDenied, fmt.Sprintf("namespaces[%d]", i), "%s is limited to the namespaces %s and may not issue a token for %q", caller.Name, strings.Join(caller.Namespaces, ", "), ns)
			}
		}
	}
	desc := req.Description
	if desc == "" {
		desc = "created by " + caller.Name
	}
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	t, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: req.Name, Description: desc,
		Roles: slices.Clone(req.Roles), Namespaces: slices.Clone(namespaces), ExpiresIn: expires})
	if err != nil {
		return nil, err
	}
	return &api.NewToken{Token: t.Token, TokenMeta: t.Meta}, nil
}

// ListTokens lists the tokens the caller may see: all of them for a caller
// limited to no namespace, those limited to some of its namespaces for
// one that is.
func (s *security) ListTokens(ctx context.Context, caller *authentication.Identity) ([]api.Token, error) {
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	all, err := issuer.ListTokens(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, 0, len(all))
	for _, m := range all {
		if tokenInScope(caller, m) {
			out = append(out, api.Token{TokenMeta: m, Management: m.Owner == ManagementOwner})
		}
	}
	return out, nil
}

// tokenInScope reports whether a caller may see and revoke a token: any
// token for a caller limited to no namespace; for one that is, tokens
// limited to some of its namespaces only (never a token of every
// namespace, such as the management token).
func tokenInScope(caller *authentication.Identity, m authentication.TokenMeta) bool {
	if !api.Limited(caller) {
		return true
	}
	if len(m.Namespaces) == 0 {
		return false
	}
	for _, ns := range m.Namespaces {
		if !api.InScope(caller, ns) {
			return false
		}
	}
	return true
}

// RevokeToken revokes a token by id; a caller limited to namespaces may
// revoke only tokens limited to some of them.
func (s *security) RevokeToken(ctx context.Context, caller *authentication.Identity, id string) (*api.Token, error) {
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	if api.Limited(caller) {
		all, err := issuer.ListTokens(ctx, "")
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(all, func(m authentication.TokenMeta) bool { return m.ID == id })
		if i < 0 {
			return nil, sdk.Errorf(sdk.ErrNotFound, "id", "no token %q", id)
		}
		if !tokenInScope(caller, all[i]) {
			return nil, api.OutOfScope(caller, "token "+id+" (not limited to its namespaces)")
		}
	}
	m, err := issuer.RevokeToken(ctx, id)
	if err != nil {
		return nil, err
	}
	return &api.Token{TokenMeta: *m, Management: m.Owner == ManagementOwner}, nil
}

// maxCredentialBytes bounds a credential's data.
