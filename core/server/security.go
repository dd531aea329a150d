package server

// The API's security routes (tokens, credentials) are served by security,
// next to the orchestrator: tokens.go, credentials.go. How requests are
// authenticated and authorized is in authn.go, the key credentials are
// encrypted under in secretkey.go.

import (
	"context"
	"sync"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// backend is what the API serves: the orchestrator, and the token and
// credential operations.
type backend struct {
	*orchestrator.Orchestrator
	*security
}

var (
	_ api.Security    = (*security)(nil)
	_ api.Backend     = backend{}
	_ api.Following   = (*orchestrator.Orchestrator)(nil)
	_ api.TypeCatalog = (*orchestrator.Orchestrator)(nil)
)

// security serves the token and credential routes through the plugins.
type security struct {
	mgr *pluginhost.Manager
	// choices name the plugin of each single-instance category.
	choices map[sdk.Category]string
	authz   api.Authorizer
	// managed is set on a server that has a management token of its own
	// (a loopback one): bootstrap is then refused.
	managed bool
	// home and url are where a managed server keeps cli.json and the URL
	// written in it.
	home, url string
	// mu serializes bootstrap, so that two callers cannot both be first,
	// and management token rotations.
	mu  sync.Mutex
	now func() time.Time
}

func (s *security) issuer(ctx context.Context) (authentication.TokenIssuer, error) {
	p, err := s.mgr.Plugin(s.choices[sdk.CategoryAuthentication])
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return nil, err
	}
	issuer, ok := c.(authentication.TokenIssuer)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "%s does not issue tokens", s.choices[sdk.CategoryAuthentication])
	}
	return issuer, nil
}

func (s *security) credentials(ctx context.Context) (credential.Credential, error) {
	name := s.choices[sdk.CategoryCredential]
	if name == "" {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server runs no credential plugin")
	}
	p, err := s.mgr.Plugin(name)
	if err != nil {
		return nil, err
	}
	return pluginhost.Client[credential.Credential](ctx, p, sdk.CategoryCredential)
}
