// Package authentication is the contract of authentication plugins: they
// turn the credentials a request carries (a bearer token, basic
// credentials, an OIDC token...) into an [Identity].
//
// A plugin that issues its own tokens also implements [TokenIssuer]. The
// capability is optional: the server shim finds it by type assertion, and
// a plugin without it answers the token calls with sdk.ErrUnimplemented.
package authentication

import (
	"context"
	"fmt"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/types"
	authenticationv1 "github.com/palvella/palvella/proto/palvella/authentication/v1"
	"google.golang.org/grpc"
)

// Authentication is implemented by authentication plugins.
type Authentication interface {
	sdk.Plugin
	// Authenticate checks the credentials of a request. Credentials the
	// plugin does not know, or that were revoked or have expired, are
	// answered with an Identity whose Status says so, not with an error;
	// the error is for bad input (sdk.ErrInvalidArgument) and for failures
	// of the plugin itself.
	Authenticate(ctx context.Context, req *AuthenticateRequest) (*Identity, error)
}

// TokenIssuer is the optional capability of plugins that issue tokens.
// The gRPC client of every authentication plugin implements it; calls to a
// plugin without the capability fail with sdk.ErrUnimplemented.
type TokenIssuer interface {
	// CreateToken issues a token. The plaintext is in the answer once and
	// is never stored or shown again.
	CreateToken(ctx context.Context, req *CreateTokenRequest) (*CreatedToken, error)
	// RevokeToken revokes the token with the given id, or returns
	// sdk.ErrNotFound. Revoking a revoked token changes nothing.
	RevokeToken(ctx context.Context, id string) (*TokenMeta, error)
	// ListTokens returns the metadata of the tokens of owner (all tokens
	// when owner is empty), sorted by creation time.
	ListTokens(ctx context.Context, owner string) ([]TokenMeta, error)
}

// AuthenticateRequest carries the credentials of one request.
type AuthenticateRequest struct {
	// Scheme of the credentials, lower-case: "bearer", "basic", "oidc"...
	Scheme string
	// Credentials is the secret part: the token, or "user:password" for
	// basic. It is never logged.
	Credentials string
	// Headers holds selected request headers, with lower-case names.
	Headers map[string]string
	// RemoteAddr is the address the request came from.
	RemoteAddr string
}

// Validate rejects a request without credentials.
func (r *AuthenticateRequest) Validate() error {
	if r == nil || r.Credentials == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "credentials", "no credentials given")
	}
	return nil
}

// Status says what the credentials turned out to be.
type Status = types.IdentityStatus

// Identity statuses. Only StatusAuthenticated means the request may act as
// the identity.
const (
	StatusUnspecified   = types.StatusUnspecified
	StatusAuthenticated = types.StatusAuthenticated
	StatusUnknown       = types.StatusUnknown
	StatusExpired       = types.StatusExpired
	StatusRevoked       = types.StatusRevoked
)

// ParseStatus parses a status name such as "revoked".
func ParseStatus(s string) (Status, error) {
	st, err := types.ParseIdentityStatus(s)
	if err != nil {
		return st, sdk.Errorf(sdk.ErrInvalidArgument, "status", "%s", strings.TrimPrefix(err.Error(), sdk.ErrInvalidArgument.Error()+": "))
	}
	return st, nil
}

// Identity is who a request acts as.
type Identity = types.Identity

// Unknown returns the identity of credentials the plugin does not know.
func Unknown() *Identity { return &Identity{Status: StatusUnknown} }

// CreateTokenRequest asks for a new token.
type CreateTokenRequest struct {
	// Owner is the identity the token authenticates as.
	Owner       string
	Description string
	Roles       []string
	// Namespaces limits the token to these namespaces; empty means not
	// limited.
	Namespaces []string
	// ExpiresIn is the token's lifetime; zero means it does not expire.
	ExpiresIn time.Duration
}

// Validate rejects a request without an owner, with a negative lifetime,
// or with empty role or namespace names.
func (r *CreateTokenRequest) Validate() error {
	if r == nil || strings.TrimSpace(r.Owner) == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "owner", "a token needs an owner")
	}
	if r.ExpiresIn < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "expiresIn", "must not be negative")
	}
	for i, role := range r.Roles {
		if strings.TrimSpace(role) == "" {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("roles[%d]", i), "must not be empty")
		}
	}
	for i, ns := range r.Namespaces {
		if strings.TrimSpace(ns) == "" {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("namespaces[%d]", i), "must not be empty")
		}
	}
	return nil
}

// TokenMeta is what may be shown of an issued token: never its plaintext
// or hash.
type TokenMeta = types.TokenMeta

// CreatedToken is a new token: the plaintext, shown once, and its metadata.
type CreatedToken struct {
	Token string
	Meta  TokenMeta
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Authentication
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's authentication service, for
// sdk.Serve. If impl also implements TokenIssuer, the token calls are
// served too.
func Service(impl Authentication) sdk.Service {
	return sdk.Service{Category: sdk.CategoryAuthentication, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the authentication service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	authenticationv1.RegisterAuthenticationServiceServer(s, newServer(p.Impl))
	return nil
}

// GRPCClient returns a Client that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
