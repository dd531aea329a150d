package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/plugin-sdk/types"
)

// Bootstrap asks a server that has never issued a token for its first
// management token.
func (c *Client) Bootstrap(ctx context.Context) (*wire.NewToken, error) {
	var t wire.NewToken
	if err := c.do(ctx, http.MethodPost, "/tokens/bootstrap", nil, "application/json", []byte("{}"), &t); err != nil {
		return nil, fmt.Errorf("bootstrap the first token: %w", err)
	}
	return &t, nil
}

// Whoami returns the identity the client's token authenticates as.
func (c *Client) Whoami(ctx context.Context) (*types.Identity, error) {
	var id types.Identity
	if err := c.do(ctx, http.MethodGet, "/whoami", nil, "", nil, &id); err != nil {
		return nil, fmt.Errorf("ask who the token is: %w", err)
	}
	return &id, nil
}

// CreateToken issues a token; its value is in the answer only.
func (c *Client) CreateToken(ctx context.Context, req wire.TokenRequest) (*wire.NewToken, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("create token %q: %w", req.Name, err)
	}
	var t wire.NewToken
	if err := c.do(ctx, http.MethodPost, "/tokens", nil, "application/json", body, &t); err != nil {
		return nil, fmt.Errorf("create token %q: %w", req.Name, err)
	}
	return &t, nil
}

// ListTokens lists the server's tokens (never their values).
func (c *Client) ListTokens(ctx context.Context) ([]wire.Token, error) {
	var p wire.Page[wire.Token]
	if err := c.do(ctx, http.MethodGet, "/tokens", nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return p.Items, nil
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) (*wire.Token, error) {
	var m wire.Token
	if err := c.do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, "", nil, &m); err != nil {
		return nil, fmt.Errorf("revoke token %q: %w", id, err)
	}
	return &m, nil
}

// SetCredential creates or replaces a credential.
func (c *Client) SetCredential(ctx context.Context, name string, req wire.CredentialRequest) (*wire.Credential, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("set credential %q: %w", name, err)
	}
	var m wire.Credential
	if err := c.do(ctx, http.MethodPut, "/credentials/"+url.PathEscape(name), nil, "application/json", body, &m); err != nil {
		return nil, fmt.Errorf("set credential %q: %w", name, err)
	}
	return &m, nil
}

// ListCredentials lists credentials: names, types and times.
func (c *Client) ListCredentials(ctx context.Context) ([]wire.Credential, error) {
	var p wire.Page[wire.Credential]
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
func (c *Client) RotateManagementToken(ctx context.Context) (*wire.RotatedToken, error) {
	var t wire.RotatedToken
	if err := c.do(ctx, http.MethodPost, "/tokens/management/rotate", nil, "application/json", []byte("{}"), &t); err != nil {
		return nil, fmt.Errorf("rotate the management token: %w", err)
	}
	return &t, nil
}
