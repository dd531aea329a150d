package builtin

import (
	"bytes"
	"context"
	"database/sql"
	"errors"

	"github.com/palvella/palvella/plugins/internal/sqlstore"
)

// schema is the plugin's tables. Names, types and labels are metadata
// and stay readable; the values are sealed. Times are Unix nanoseconds.
// In PostgreSQL, whose database is shared with other plugins and servers,
// the tables' names say whose they are.
var schema = sqlstore.Schema{
	Name: "credential",
	SQLite: `
CREATE TABLE IF NOT EXISTS credentials (
	name    TEXT PRIMARY KEY,
	type    TEXT NOT NULL DEFAULT '',
	labels  TEXT NOT NULL DEFAULT '{}',
	nonce   BLOB NOT NULL,
	sealed  BLOB NOT NULL,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_check (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	nonce  BLOB NOT NULL,
	sealed BLOB NOT NULL
);
`,
	Postgres: `
CREATE TABLE IF NOT EXISTS palvella_credentials (
	name    TEXT PRIMARY KEY,
	type    TEXT NOT NULL DEFAULT '',
	labels  TEXT NOT NULL DEFAULT '{}',
	nonce   BYTEA NOT NULL,
	sealed  BYTEA NOT NULL,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS palvella_credential_key_check (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	nonce  BYTEA NOT NULL,
	sealed BYTEA NOT NULL
);
`,
}

// tables are the names of the plugin's tables in one database.
type tables struct{ credentials, keyCheck string }

func tablesOf(db *sqlstore.DB) tables {
	if db.Postgres {
		return tables{"palvella_credentials", "palvella_credential_key_check"}
	}
	return tables{"credentials", "key_check"}
}

var errWrongKey = errors.New("wrong key")

// checkKey proves that s opens the database's records: it opens the key
// check record, or writes one into a database that has none.
func checkKey(ctx context.Context, db *sqlstore.DB, s *sealer) error {
	var nonce, sealed []byte
	err := db.QueryRow(ctx, `SELECT nonce, sealed FROM `+tablesOf(db).keyCheck+` WHERE id = 1`).Scan(&nonce, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		nonce, sealed, err := s.seal(keyCheckPlaintext, keyCheckAAD)
		if err != nil {
			return err
		}
		_, err = db.Exec(ctx, `INSERT INTO `+tablesOf(db).keyCheck+` (id, nonce, sealed) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, nonce, sealed)
		if err != nil {
			return err
		}
		return checkKey(ctx, db, s) // another process may have won the insert
	}
	if err != nil {
		return err
	}
	plain, err := s.open(nonce, sealed, keyCheckAAD)
	if err != nil || !bytes.Equal(plain, keyCheckPlaintext) {
		return errWrongKey
	}
	return nil
}
