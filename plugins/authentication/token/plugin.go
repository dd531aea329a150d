package token

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugins/internal/sqlstore"
)

// Name and Version of the plugin.
const (
	Name    = "authentication-token"
	Version = "0.1.0"
)

// Identity types this plugin answers with.
const (
	// TypeToken is the type of identities authenticated by an issued token.
	TypeToken = "token"
	// TypeBootstrap is the type of the bootstrap management identity.
	TypeBootstrap = "bootstrap"
)

// BootstrapOwner is the name the bootstrap token authenticates as. It has
// the role "admin".
const BootstrapOwner = "bootstrap"

// DefaultPath is where the token database lives when the configuration
// names none.
func DefaultPath() string {
	return filepath.Join(os.TempDir(), "palvella", "authentication-token.db")
}

// Plugin is the token authentication plugin. It implements
// authentication.Authentication and authentication.TokenIssuer.
type Plugin struct {
	mu sync.RWMutex
	db *sqlstore.DB
	// bootstrap is the hash of the bootstrap token, nil without one.
	bootstrap []byte

	// now is the clock.
	now func() time.Time
}

var (
	_ authentication.Authentication = (*Plugin)(nil)
	_ authentication.TokenIssuer    = (*Plugin)(nil)
)

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{now: time.Now} }

// Serve runs the plugin as a plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{authentication.Service(p)}, opts...)
}

var configSchema = map[string]any{
	"$schema":              "https://json-schema.org/draft/2020-12/schema",
	"type":                 "object",
	"additionalProperties": false,
	"properties": map[string]any{
		"path": map[string]any{
			"type":        "string",
			"description": "The sqlite file that holds the token hashes. Default: palvella/authentication-token.db under the system's temporary directory. Ignored when dsn is set.",
		},
		"dsn": map[string]any{
			"type":        "string",
			"minLength":   1,
			"description": "A PostgreSQL connection string (URL or key=value pairs): keep the token hashes in table palvella_tokens of that database instead of a sqlite file, so that servers on several machines accept the same tokens. Write it as {from_env: NAME}, {from_file: PATH} or {from_credential: NAME} when it holds a password.",
		},
		"bootstrap_token": map[string]any{
			"type":        "string",
			"pattern":     "^pvt_[A-Za-z0-9_-]{43}$",
			"description": "A management token that authenticates as \"bootstrap\" with the role admin, to create the first tokens. Write it as {from_credential: NAME}; generate one with `palvella token generate`.",
		},
	},
}

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "API tokens, stored as sha256 hashes in a sqlite file or a PostgreSQL database, and a bootstrap management token.",
		Categories:       []sdk.Category{sdk.CategoryAuthentication},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema:     configSchema,
	}, nil
}

// Configure opens the token database. On any error diagnostic the previous
// configuration stays in force.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	var cfg map[string]any
	if req != nil {
		cfg = req.Config
	}
	var diags []sdk.Diagnostic
	bad := func(field, summary string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary})
	}
	for k := range cfg {
		if _, ok := configSchema["properties"].(map[string]any)[k]; !ok {
			bad(k, "unknown setting (known: path, dsn, bootstrap_token)")
		}
	}
	path := DefaultPath()
	if v, ok := cfg["path"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			bad("path", "must be a string")
		case strings.TrimSpace(s) == "":
			bad("path", "must not be empty")
		default:
			path = s
		}
	}
	dsn := ""
	if v, ok := cfg["dsn"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			bad("dsn", "must be a string")
		case strings.TrimSpace(s) == "":
			bad("dsn", "must not be empty")
		default:
			dsn = s
		}
	}
	var bootstrap []byte
	if v, ok := cfg["bootstrap_token"]; ok {
		s, isString := v.(string)
		raw, err := ParseToken(s)
		if !isString || err != nil {
			// The value is a secret: the message does not repeat it.
			bad("bootstrap_token", fmt.Sprintf("must be a token: %q followed by 43 base64url characters", Prefix))
		} else {
			bootstrap = hashToken(raw)
		}
	}
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	var db *sqlstore.DB
	var err error
	if dsn != "" {
		db, err = sqlstore.OpenPostgres(ctx, dsn, schema)
	} else {
		db, err = sqlstore.OpenSQLite(ctx, path, schema)
	}
	if err != nil {
		bad(map[bool]string{true: "dsn", false: "path"}[dsn != ""], err.Error())
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}

	p.mu.Lock()
	old := p.db
	p.db, p.bootstrap = db, bootstrap
	p.mu.Unlock()
	if old != nil {
		_ = old.Close() // replaced; in-flight calls finish on their connection
	}
	return &sdk.ConfigureResponse{}, nil
}

// Close closes the token database.
func (p *Plugin) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return nil
	}
	err := p.db.Close()
	p.db = nil
	return err
}

// state returns the configured database and bootstrap hash.
func (p *Plugin) state() (*sqlstore.DB, []byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return nil, nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "%s is not configured", Name)
	}
	return p.db, p.bootstrap, nil
}

// Authenticate answers for "bearer" credentials that are tokens of this
// plugin; anything else is an unknown identity.
func (p *Plugin) Authenticate(ctx context.Context, req *authentication.AuthenticateRequest) (*authentication.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	db, bootstrap, err := p.state()
	if err != nil {
		return nil, err
	}
	if req.Scheme != "" && !strings.EqualFold(req.Scheme, "bearer") {
		return authentication.Unknown(), nil
	}
	raw, err := ParseToken(req.Credentials)
	if err != nil {
		return authentication.Unknown(), nil
	}
	hash := hashToken(raw)
	if bootstrap != nil && subtle.ConstantTimeCompare(hash, bootstrap) == 1 {
		return &authentication.Identity{
			Name: BootstrapOwner, Type: TypeBootstrap, Domain: Name,
			Status: authentication.StatusAuthenticated, Roles: []string{"admin"},
		}, nil
	}
	m, stored, err := byHash(ctx, db, hash)
	if isNoRows(err) {
		return authentication.Unknown(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("look the token up in %s: %w", db.Where, err)
	}
	// The lookup was by hash; compare again in constant time, so that no
	// answer depends on how much of a hash matched.
	if subtle.ConstantTimeCompare(hash, stored) != 1 {
		return authentication.Unknown(), nil
	}
	id := &authentication.Identity{
		Name: m.Owner, Type: TypeToken, Domain: Name,
		Attributes: map[string]string{"token_id": m.ID},
		ExpiresAt:  m.ExpiresAt,
	}
	switch {
	case m.Revoked():
		id.Status = authentication.StatusRevoked
	case !m.ExpiresAt.IsZero() && !p.now().Before(m.ExpiresAt):
		id.Status = authentication.StatusExpired
	default:
		id.Status = authentication.StatusAuthenticated
		id.Roles, id.Namespaces = m.Roles, m.Namespaces
	}
	return id, nil
}

// CreateToken issues a token; its plaintext is in the answer only.
func (p *Plugin) CreateToken(ctx context.Context, req *authentication.CreateTokenRequest) (*authentication.CreatedToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	db, _, err := p.state()
	if err != nil {
		return nil, err
	}
	plain, hash, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("create token for %q: %w", req.Owner, err)
	}
	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("create token for %q: %w", req.Owner, err)
	}
	now := p.now().UTC()
	m := authentication.TokenMeta{
		ID: id, Owner: req.Owner, Description: req.Description,
		Roles: slices.Clone(req.Roles), Namespaces: slices.Clone(req.Namespaces), CreatedAt: now,
	}
	if req.ExpiresIn > 0 {
		m.ExpiresAt = now.Add(req.ExpiresIn)
	}
	if err := insert(ctx, db, &m, hash); err != nil {
		return nil, fmt.Errorf("store token for %q: %w", req.Owner, err)
	}
	return &authentication.CreatedToken{Token: plain, Meta: m}, nil
}

// RevokeToken revokes a token by id.
func (p *Plugin) RevokeToken(ctx context.Context, id string) (*authentication.TokenMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(id) == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "id", "no token id given")
	}
	db, _, err := p.state()
	if err != nil {
		return nil, err
	}
	m, err := revoke(ctx, db, id, p.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("revoke token %q: %w", id, err)
	}
	return m, nil
}

// ListTokens lists token metadata, oldest first.
func (p *Plugin) ListTokens(ctx context.Context, owner string) ([]authentication.TokenMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, _, err := p.state()
	if err != nil {
		return nil, err
	}
	out, err := list(ctx, db, owner)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// newID returns a token id: not secret, only unique.
func newID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tok_" + hex.EncodeToString(b), nil
}
