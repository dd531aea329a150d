// Package builtin is the first-party credential plugin of Palvella:
// credentials in the plugin's own sqlite file, their values encrypted at
// rest with AES-256-GCM.
//
// Every record is sealed under a fresh random nonce, with the credential's
// name bound as additional data, so records cannot be swapped or moved
// between names. Names, types, labels and times stay readable: they are
// what List shows. The key comes from the configuration (`key`, base64 of
// 32 bytes, best written as {from_credential: ...} or from the
// environment) or from a file (`key_file`). With neither, the plugin
// creates a random key in a file next to the database, readable by its
// owner only, as Jenkins does with its master key.
package builtin

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugins/internal/sqlstore"
)

// Name and Version of the plugin.
const (
	Name    = "credential-builtin"
	Version = "0.1.0"
)

// DefaultPath is where the credential database lives when the
// configuration names none.
func DefaultPath() string {
	return filepath.Join(os.TempDir(), "palvella", "credential-builtin.db")
}

// Plugin is the builtin credential plugin.
type Plugin struct {
	mu     sync.RWMutex
	db     *sqlstore.DB
	sealer *sealer

	now func() time.Time
}

var _ credential.Credential = (*Plugin)(nil)

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{now: time.Now} }

// Serve runs the plugin as a plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{credential.Service(p)}, opts...)
}

var configSchema = map[string]any{
	"$schema":              "https://json-schema.org/draft/2020-12/schema",
	"type":                 "object",
	"additionalProperties": false,
	"properties": map[string]any{
		"path": map[string]any{
			"type":        "string",
			"description": "The sqlite file that holds the encrypted credentials. Default: palvella/credential-builtin.db under the system's temporary directory. Ignored when dsn is set (but for the default key file, path.key).",
		},
		"dsn": map[string]any{
			"type":        "string",
			"minLength":   1,
			"description": "A PostgreSQL connection string (URL or key=value pairs): keep the encrypted credentials in table palvella_credentials of that database instead of a sqlite file, so that servers on several machines share them (each with the same key). Write it as {from_env: NAME}, {from_file: PATH} or {from_credential: NAME} when it holds a password.",
		},
		"key": map[string]any{
			"type":        "string",
			"description": "The AES-256 key, base64 of 32 bytes. Do not write it in the configuration file in plain text.",
		},
		"key_file": map[string]any{
			"type":        "string",
			"description": "A file holding the key in base64. Default, when key is not set either: the database path with .key appended, created with a random key if missing.",
		},
	},
	"not": map[string]any{"required": []any{"key", "key_file"}},
}

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Credentials in a sqlite file or a PostgreSQL database, encrypted at rest with AES-256-GCM.",
		Categories:       []sdk.Category{sdk.CategoryCredential},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema:     configSchema,
	}, nil
}

// Configure opens the database and checks that the key opens it. On any
// error diagnostic the previous configuration stays in force.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	var cfg map[string]any
	if req != nil {
		cfg = req.Config
	}
	var diags []sdk.Diagnostic
	bad := func(field, summary string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary})
	}
	str := func(k string) (string, bool) {
		v, ok := cfg[k]
		if !ok {
			return "", false
		}
		s, isString := v.(string)
		if !isString || strings.TrimSpace(s) == "" {
			bad(k, "must be a non-empty string")
			return "", false
		}
		return s, true
	}
	for k := range cfg {
		if k != "path" && k != "dsn" && k != "key" && k != "key_file" {
			bad(k, "unknown setting (known: path, dsn, key, key_file)")
		}
	}
	path := DefaultPath()
	if s, ok := str("path"); ok {
		path = s
	}
	dsn, _ := str("dsn")
	keyText, haveKey := str("key")
	keyFile, haveKeyFile := str("key_file")
	keyField := "key"
	var key []byte
	switch {
	case haveKey && haveKeyFile:
		bad("key_file", "set key or key_file, not both")
	case haveKey:
		var err error
		if key, err = parseKey(keyText); err != nil {
			bad("key", err.Error()) // never the value
		}
	case haveKeyFile:
		keyField = "key_file"
		b, err := os.ReadFile(keyFile)
		if err != nil {
			bad("key_file", fmt.Sprintf("cannot read the key: %v", err))
			break
		}
		if key, err = parseKey(string(b)); err != nil {
			bad("key_file", fmt.Sprintf("%s does not hold a key: %v", keyFile, err))
		}
	}
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if key == nil {
		keyField = "key_file"
		var err error
		if key, err = defaultKey(path + ".key"); err != nil {
			bad("key_file", err.Error())
			return &sdk.ConfigureResponse{Diagnostics: diags}, nil
		}
	}
	s, err := newSealer(key)
	if err != nil {
		bad(keyField, err.Error())
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	var db *sqlstore.DB
	dbField := "path"
	if dsn != "" {
		dbField = "dsn"
		db, err = sqlstore.OpenPostgres(ctx, dsn, schema)
	} else {
		db, err = sqlstore.OpenSQLite(ctx, path, schema)
	}
	if err != nil {
		bad(dbField, err.Error())
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if err := checkKey(ctx, db, s); err != nil {
		_ = db.Close()
		if errors.Is(err, errWrongKey) {
			bad(keyField, fmt.Sprintf("this key does not open the credentials in %s: it is not the key they were stored with", db.Where))
		} else {
			bad(dbField, fmt.Sprintf("check the key against %s: %v", db.Where, err))
		}
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}

	p.mu.Lock()
	old := p.db
	p.db, p.sealer = db, s
	p.mu.Unlock()
	if old != nil {
		_ = old.Close() // replaced
	}
	return &sdk.ConfigureResponse{}, nil
}

// defaultKey reads the key in file, creating the file with a random key if
// it does not exist.
func defaultKey(file string) ([]byte, error) {
	if b, err := os.ReadFile(file); err == nil {
		key, err := parseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s does not hold a key: %w", file, err)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the key: %w", err)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate a key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", file, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return defaultKey(file) // created meanwhile by another process
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", file, err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(file) // do not leave a half-written key behind
		return nil, fmt.Errorf("write %s: %w", file, werr)
	}
	return key, nil
}

// Close closes the database.
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

func (p *Plugin) state() (*sqlstore.DB, *sealer, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return nil, nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "%s is not configured", Name)
	}
	return p.db, p.sealer, nil
}

// validName bounds no length (checkName does): a repetition such as
// {0,252} compiles to hundreds of states, a millisecond at every start of
// the plugin.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func checkName(name string) error {
	if len(name) > 253 || !validName.MatchString(name) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "name", "%q is not a credential name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 253", name)
	}
	return nil
}

// Put creates or replaces a credential.
func (p *Plugin) Put(ctx context.Context, req *credential.PutRequest) (*credential.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "name", "no credential given")
	}
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data", "a credential needs at least one value")
	}
	for k := range req.Data {
		if k == "" {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data", "value names must not be empty")
		}
	}
	db, s, err := p.state()
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(req.Data) // []byte values travel as base64
	if err != nil {
		return nil, fmt.Errorf("put credential %q: encode values: %w", req.Name, err)
	}
	nonce, sealed, err := s.seal(plain, aadPrefix+req.Name)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("put credential %q: encrypt: %w", req.Name, err)
	}
	labels, err := json.Marshal(nonNil(req.Labels))
	if err != nil {
		return nil, fmt.Errorf("put credential %q: encode labels: %w", req.Name, err)
	}
	now := p.now().UTC().UnixNano()
	var created int64
	err = db.QueryRow(ctx, `
		INSERT INTO `+tablesOf(db).credentials+` (name, type, labels, nonce, sealed, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET type = excluded.type, labels = excluded.labels,
			nonce = excluded.nonce, sealed = excluded.sealed, updated = excluded.updated
		RETURNING created`,
		req.Name, req.Type, string(labels), nonce, sealed, now, now).Scan(&created)
	if err != nil {
		return nil, fmt.Errorf("put credential %q: %w", req.Name, err)
	}
	return &credential.Meta{Name: req.Name, Type: req.Type, Labels: maps.Clone(req.Labels), CreatedAt: fromNanos(created), UpdatedAt: fromNanos(now)}, nil
}

// Get returns a credential with its values.
func (p *Plugin) Get(ctx context.Context, name string) (*credential.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, s, err := p.state()
	if err != nil {
		return nil, err
	}
	var (
		m              credential.Meta
		labels         string
		nonce, sealed  []byte
		created, updat int64
	)
	err = db.QueryRow(ctx, `SELECT name, type, labels, nonce, sealed, created, updated FROM `+tablesOf(db).credentials+` WHERE name = ?`, name).
		Scan(&m.Name, &m.Type, &labels, &nonce, &sealed, &created, &updat)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "name", "no credential is named %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get credential %q: %w", name, err)
	}
	if err := decodeLabels(labels, &m); err != nil {
		return nil, fmt.Errorf("get credential %q: %w", name, err)
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updat)
	plain, err := s.open(nonce, sealed, aadPrefix+name)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "key", "cannot decrypt credential %q: the key is not the one it was stored with, or the record was altered", name)
	}
	var data map[string][]byte
	err = json.Unmarshal(plain, &data)
	clear(plain)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "data", "credential %q decrypted to malformed values", name)
	}
	return &credential.Secret{Meta: m, Data: data}, nil
}

// Delete removes a credential.
func (p *Plugin) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db, _, err := p.state()
	if err != nil {
		return err
	}
	res, err := db.Exec(ctx, `DELETE FROM `+tablesOf(db).credentials+` WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete credential %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete credential %q: %w", name, err)
	}
	if n == 0 {
		return sdk.Errorf(sdk.ErrNotFound, "name", "no credential is named %q", name)
	}
	return nil
}

// List returns the metadata of credentials whose names start with prefix,
// sorted by name. It never decrypts anything.
func (p *Plugin) List(ctx context.Context, prefix string) ([]credential.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, _, err := p.state()
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT name, type, labels, created, updated FROM `+tablesOf(db).credentials+`
		WHERE substr(name, 1, length(CAST(? AS TEXT))) = CAST(? AS TEXT) ORDER BY name`, prefix, prefix)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	out := []credential.Meta{}
	for rows.Next() {
		var (
			m               credential.Meta
			labels          string
			created, update int64
		)
		if err := rows.Scan(&m.Name, &m.Type, &labels, &created, &update); err != nil {
			return nil, fmt.Errorf("list credentials: %w", err)
		}
		if err := decodeLabels(labels, &m); err != nil {
			return nil, fmt.Errorf("list credentials: %w", err)
		}
		m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(update)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return out, nil
}

func decodeLabels(s string, m *credential.Meta) error {
	if err := json.Unmarshal([]byte(s), &m.Labels); err != nil {
		return fmt.Errorf("labels of %q: %w", m.Name, err)
	}
	if len(m.Labels) == 0 {
		m.Labels = nil
	}
	return nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
