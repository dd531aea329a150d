package token

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugins/internal/sqlstore"
)

// schema is the plugin's tables. Times are Unix nanoseconds; expires and
// revoked are NULL when unset. The hash column is unique, which also gives
// the index tokens are looked up by. In PostgreSQL, whose database is
// shared with other plugins and servers, the table's name says whose it is.
var schema = sqlstore.Schema{
	Name: "token",
	SQLite: `
CREATE TABLE IF NOT EXISTS tokens (
	id          TEXT PRIMARY KEY,
	hash        BLOB NOT NULL UNIQUE,
	owner       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	roles       TEXT NOT NULL DEFAULT '[]',
	namespaces  TEXT NOT NULL DEFAULT '[]',
	created     INTEGER NOT NULL,
	expires     INTEGER,
	revoked     INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_by_owner ON tokens (owner, created);
`,
	Postgres: `
CREATE TABLE IF NOT EXISTS palvella_tokens (
	id          TEXT PRIMARY KEY,
	hash        BYTEA NOT NULL UNIQUE,
	owner       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	roles       TEXT NOT NULL DEFAULT '[]',
	namespaces  TEXT NOT NULL DEFAULT '[]',
	created     BIGINT NOT NULL,
	expires     BIGINT,
	revoked     BIGINT
);
CREATE INDEX IF NOT EXISTS palvella_tokens_by_owner ON palvella_tokens (owner, created);
`,
}

// table is the tokens' table in db.
func table(db *sqlstore.DB) string {
	if db.Postgres {
		return "palvella_tokens"
	}
	return "tokens"
}

const metaColumns = `id, owner, description, roles, namespaces, created, expires, revoked`

type scanner interface{ Scan(dest ...any) error }

// scanMeta reads the metaColumns of a row, then extra columns into extra.
func scanMeta(row scanner, extra ...any) (authentication.TokenMeta, error) {
	var (
		m                 authentication.TokenMeta
		roles, namespaces string
		created           int64
		expires, revoked  sql.NullInt64
	)
	dest := append([]any{&m.ID, &m.Owner, &m.Description, &roles, &namespaces, &created, &expires, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(roles), &m.Roles); err != nil {
		return m, fmt.Errorf("token %s: roles: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(namespaces), &m.Namespaces); err != nil {
		return m, fmt.Errorf("token %s: namespaces: %w", m.ID, err)
	}
	m.CreatedAt = fromNanos(created)
	if expires.Valid {
		m.ExpiresAt = fromNanos(expires.Int64)
	}
	if revoked.Valid {
		m.RevokedAt = fromNanos(revoked.Int64)
	}
	return m, nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullNanos stores the zero time as NULL.
func nullNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func jsonList(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}

// insert stores a new token.
func insert(ctx context.Context, db *sqlstore.DB, m *authentication.TokenMeta, hash []byte) error {
	_, err := db.Exec(ctx,
		`INSERT INTO `+table(db)+` (id, hash, owner, description, roles, namespaces, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, hash, m.Owner, m.Description, jsonList(m.Roles), jsonList(m.Namespaces), m.CreatedAt.UnixNano(), nullNanos(m.ExpiresAt))
	return err
}

// byHash returns the token with the given hash, and the stored hash.
func byHash(ctx context.Context, db *sqlstore.DB, hash []byte) (authentication.TokenMeta, []byte, error) {
	var stored []byte
	m, err := scanMeta(db.QueryRow(ctx, `SELECT `+metaColumns+`, hash FROM `+table(db)+` WHERE hash = ?`, hash), &stored)
	return m, stored, err
}

// revoke marks a token revoked at now unless it already was, and returns it.
func revoke(ctx context.Context, db *sqlstore.DB, id string, now time.Time) (*authentication.TokenMeta, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	res, err := tx.Exec(ctx, `UPDATE `+table(db)+` SET revoked = COALESCE(revoked, ?) WHERE id = ?`, now.UnixNano(), id)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, sdk.Errorf(sdk.ErrNotFound, "id", "no token has the id %q", id)
	}
	m, err := scanMeta(tx.QueryRow(ctx, `SELECT `+metaColumns+` FROM `+table(db)+` WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &m, nil
}

// list returns the tokens of owner, or all tokens, oldest first.
func list(ctx context.Context, db *sqlstore.DB, owner string) ([]authentication.TokenMeta, error) {
	rows, err := db.Query(ctx, `SELECT `+metaColumns+` FROM `+table(db)+` WHERE ? = '' OR owner = ? ORDER BY created, id`, owner, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []authentication.TokenMeta{}
	for rows.Next() {
		m, err := scanMeta(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// isNoRows reports whether a single-row query found nothing.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
