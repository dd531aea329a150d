package builtin

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // the sqlite driver
)

// schema is the plugin's database. Names, types and labels are metadata
// and stay readable; the values are sealed. Times are Unix nanoseconds.
const schema = `
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
`

// openDB opens (creating if needed, readable by its owner only) the
// credential database at path.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	_ = f.Close() // only created here; sqlite opens it again
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("prepare the credential database %s: %w", path, err)
	}
	return db, nil
}

var errWrongKey = errors.New("wrong key")

// checkKey proves that s opens the database's records: it opens the key
// check record, or writes one into a database that has none.
func checkKey(ctx context.Context, db *sql.DB, s *sealer) error {
	var nonce, sealed []byte
	err := db.QueryRowContext(ctx, `SELECT nonce, sealed FROM key_check WHERE id = 1`).Scan(&nonce, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		nonce, sealed, err := s.seal(keyCheckPlaintext, keyCheckAAD)
		if err != nil {
			return err
		}
		_, err = db.ExecContext(ctx, `INSERT INTO key_check (id, nonce, sealed) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, nonce, sealed)
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
