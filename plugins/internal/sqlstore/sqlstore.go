// Package sqlstore opens the small SQL databases of the first-party
// plugins that keep state of their own (authentication-token,
// credential-builtin): a sqlite file on one machine, or a PostgreSQL
// database that several servers on several machines share.
//
// Both go through database/sql (mattn/go-sqlite3, and pgx's stdlib driver)
// so that a plugin has one set of queries, written with ? placeholders;
// Rebind turns them into PostgreSQL's $1, $2, ...
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver
)

// DB is an open store.
type DB struct {
	*sql.DB
	// Postgres is true for a PostgreSQL database, false for sqlite.
	Postgres bool
	// Where names the database in messages: the sqlite file's path, or
	// "the PostgreSQL database of config.dsn" (never the DSN, which may
	// hold a password).
	Where string
}

// Schema is a plugin's tables in each dialect.
type Schema struct {
	// Name names the store in messages and in PostgreSQL's migration
	// lock ("token", "credential").
	Name     string
	SQLite   string
	Postgres string
}

// OpenSQLite opens (creating if needed, readable by its owner only) the
// sqlite file at path and creates the schema's tables.
func OpenSQLite(ctx context.Context, path string, s Schema) (*DB, error) {
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
	if _, err := db.ExecContext(ctx, s.SQLite); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("prepare the %s database %s: %w", s.Name, path, err)
	}
	return &DB{DB: db, Where: path}, nil
}

// connectTimeout bounds the first connection to PostgreSQL, so that a
// server with a wrong DSN says so instead of waiting.
const connectTimeout = 15 * time.Second

// OpenPostgres connects to the PostgreSQL database of dsn and creates the
// schema's tables. Servers starting together create them once: the
// statements run in a transaction under an advisory lock named after the
// schema. Messages never repeat the DSN.
func OpenPostgres(ctx context.Context, dsn string, s Schema) (*DB, error) {
	where := "the PostgreSQL database of config.dsn"
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN; say only what kind of problem.
		return nil, fmt.Errorf("not a PostgreSQL connection string: write a URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...) or key=value pairs (host=... user=... dbname=...)")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := migrate(cctx, db, s); err != nil {
		_ = db.Close()
		if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
			return nil, fmt.Errorf("prepare the %s tables in %s: cannot connect (the error named the password, so it is not shown)", s.Name, where)
		}
		return nil, fmt.Errorf("prepare the %s tables in %s: %w", s.Name, where, err)
	}
	return &DB{DB: db, Postgres: true, Where: where}, nil
}

func migrate(ctx context.Context, db *sql.DB, s Schema) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(s.Name)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.Postgres); err != nil {
		return err
	}
	return tx.Commit()
}

// lockKey is the advisory lock of a schema's migration: a hash of its
// name in a space of its own.
func lockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("palvella-sqlstore:" + name))
	return int64(h.Sum64())
}

// Rebind returns query with its ? placeholders written for the database:
// unchanged for sqlite, $1, $2, ... for PostgreSQL. The queries it is
// given hold no ? inside string literals.
func (d *DB) Rebind(query string) string {
	if !d.Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Exec, Query and QueryRow are database/sql's, with the query rebound.
func (d *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.ExecContext(ctx, d.Rebind(query), args...)
}

// Query is QueryContext with the query rebound.
func (d *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.QueryContext(ctx, d.Rebind(query), args...)
}

// QueryRow is QueryRowContext with the query rebound.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return d.QueryRowContext(ctx, d.Rebind(query), args...)
}

// Tx is a transaction whose queries are rebound like DB's.
type Tx struct {
	*sql.Tx
	db *DB
}

// Begin starts a transaction.
func (d *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: d}, nil
}

// Exec is ExecContext with the query rebound.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.ExecContext(ctx, t.db.Rebind(query), args...)
}

// QueryRow is QueryRowContext with the query rebound.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.QueryRowContext(ctx, t.db.Rebind(query), args...)
}
