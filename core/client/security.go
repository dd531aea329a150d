package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// Bootstrap asks a server that has never issued a token for its first
// management token.
func (c *Client) Bootstrap(ctx context.Context) (*api.NewToken, error) {
	var t api.NewToken
	if err := c.do(ctx, http.MethodPost, "/tokens/bootstrap", nil, "application/json", []byte("{}"), &t); err != nil {
		return nil, fmt.Errorf("bootstrap the first token: %w", err)
	}
	return &t, nil
}

// Whoami returns the identity the client's token authenticates as.
func (c *Client) Whoami(ctx context.Context) (*authentication.Identity, error) {
	var id authentication.Identity
	if err := c.do(ctx, http.MethodGet, "/whoami", nil, "", nil, &id); err != nil {
		return nil, fmt.Errorf("ask who the token is: %w", err)
	}
	return &id, nil
}

// CreateToken issues a token; its value is in the answer only.
func (c *Client) CreateToken(ctx context.Context, req api.TokenRequest) (*api.NewToken, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("create token %q: %w", req.Name, err)
	}
	var t api.NewToken
	if err := c.do(ctx, http.MethodPost, "/tokens", nil, "application/json", body, &t); err != nil {
		return nil, fmt.Errorf("create token %q: %w", req.Name, err)
	}
	return &t, nil
}

// ListTokens lists the server's tokens (never their values).
func (c *Client) ListTokens(ctx context.Context) ([]api.Token, error) {
	var p api.Page[api.Token]
	if err := c.do(ctx, http.MethodGet, "/tokens", nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return p.Items, nil
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) (*api.Token, error) {
	var m api.Token
	if err := c.do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, "", nil, &m); err != nil {
		return nil, fmt.Errorf("revoke token %q: %w", id, err)
	}
	return &m, nil
}

// SetCredential creates or replaces a credential.
func (c *Client) SetCredential(ctx context.Context, name string, req api.CredentialRequest) (*api.Credential, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("set credential %q: %w", name, err)
	}
	var m api.Credential
	if err := c.do(ctx, http.MethodPut, "/credentials/"+url.PathEscape(name), nil, "application/json", body, &m); err != nil {
		return nil, fmt.Errorf("set credential %q: %w", name, err)
	}
	return &m, nil
}

// ListCredentials lists credentials: names, types and times.
func (c *Client) ListCredentials(ctx context.Context) ([]api.Credential, error) {
	var p api.Page[api.Credential]
	if err := c.do(ctx, http.MethodGet, "/credentials", nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return p.Items, nil
}

// DeleteCredential deletes a credential.
func (c *Client) DeleteCredential(ctx context.Context, name string) error {
	if err := c.do(ctx, http.MethodDelete, "/credentials/"+url.PathEscape(name), nil, "", nil, nil); err != nil {
		return fmt.Errorf("delete credential %q: %w", name, err)
	}
	return nil
}

// RotateManagementToken replaces the server's management token: the new
// one is in the answer only (and in the server's cli.json when it keeps
// one).
func (c *Client) RotateManagementToken(ctx context.Context) (*api.RotatedToken, error) {
	var t api.RotatedToken
	if err := c.do(ctx, http.MethodPost, "/tokens/management/rotate", nil, "application/json", []byte("{}"), &t); err != nil {
		return nil, fmt.Errorf("rotate the management token: %w", err)
	}
	return &t, nil
}
