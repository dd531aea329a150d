package api

import (
	"context"
	"fmt"
	"net/http"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// Security is what the token and credential routes serve. The server's
// backend implements it next to [Backend]; a backend without it answers
// those routes with 501.
//
// Errors wrap the sdk sentinels as Backend's do. Credential values go in
// and never come out.
type Security interface {
	// Bootstrap creates the first management token of a server that has
	// never issued one, and refuses (sdk.ErrFailedPrecondition) once it
	// has.
	Bootstrap(ctx context.Context) (*NewToken, error)
	// CreateToken issues a token for the caller, who may not give it
	// roles or namespaces beyond its own.
	CreateToken(ctx context.Context, caller *authentication.Identity, req TokenRequest) (*NewToken, error)
	ListTokens(ctx context.Context) ([]authentication.TokenMeta, error)
	RevokeToken(ctx context.Context, id string) (*authentication.TokenMeta, error)

	// SetCredential creates or replaces a credential.
	SetCredential(ctx context.Context, name string, req CredentialRequest) (*credential.Meta, error)
	ListCredentials(ctx context.Context) ([]credential.Meta, error)
	DeleteCredential(ctx context.Context, name string) error
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	// Name is who or what the token is for (its owner).
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	// Namespaces limits the token to these namespaces; empty is every
	// namespace the caller may reach.
	Namespaces []string `json:"namespaces,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// NewToken is a token just issued: the only time its value is shown.
type NewToken struct {
	Token string `json:"token"`
	authentication.TokenMeta
}

// CredentialRequest is the body of PUT /api/v1/credentials/{name}.
type CredentialRequest struct {
	// Type is what the credential is ("secret" when empty).
	Type string `json:"type,omitempty"`
	// Value is the credential's value, stored under the key "value".
	Value string `json:"value,omitempty"`
	// Data holds several keys; Value and Data may not both be set.
	Data   map[string]string `json:"data,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

func (s *server) security() (Security, error) {
	sec, ok := s.b.(Security)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not manage tokens or credentials")
	}
	return sec, nil
}

func (s *server) bootstrap(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	t, err := sec.Bootstrap(c.r.Context())
	if err != nil {
		return fmt.Errorf("bootstrap the first token: %w", err)
	}
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusOK, t)
	return nil
}

func (s *server) whoami(c *call) error {
	writeJSON(c.w, http.StatusOK, c.id)
	return nil
}

func (s *server) createToken(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	var req TokenRequest
	if err := c.decode(&req, "name", "description", "roles", "namespaces", "expiresIn"); err != nil {
		return err
	}
	t, err := sec.CreateToken(c.r.Context(), c.id, req)
	if err != nil {
		return fmt.Errorf("create a token for %q: %w", req.Name, err)
	}
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusCreated, t)
	return nil
}

func (s *server) listTokens(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	items, err := sec.ListTokens(c.r.Context())
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	if items == nil {
		items = []authentication.TokenMeta{}
	}
	writeJSON(c.w, http.StatusOK, Page[authentication.TokenMeta]{Items: items})
	return nil
}

func (s *server) revokeToken(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	id := c.r.PathValue("name")
	m, err := sec.RevokeToken(c.r.Context(), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	writeJSON(c.w, http.StatusOK, m)
	return nil
}

func (s *server) setCredential(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	var req CredentialRequest
	if err := c.decode(&req, "type", "value", "data", "labels"); err != nil {
		return err
	}
	name := c.r.PathValue("name")
	m, err := sec.SetCredential(c.r.Context(), name, req)
	if err != nil {
		return fmt.Errorf("set credential %s: %w", name, err)
	}
	writeJSON(c.w, http.StatusOK, m)
	return nil
}

func (s *server) listCredentials(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	items, err := sec.ListCredentials(c.r.Context())
	if err != nil {
		return fmt.Errorf("list credentials: %w", err)
	}
	if items == nil {
		items = []credential.Meta{}
	}
	writeJSON(c.w, http.StatusOK, Page[credential.Meta]{Items: items})
	return nil
}

func (s *server) deleteCredential(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	name := c.r.PathValue("name")
	if err := sec.DeleteCredential(c.r.Context(), name); err != nil {
		return fmt.Errorf("delete credential %s: %w", name, err)
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
