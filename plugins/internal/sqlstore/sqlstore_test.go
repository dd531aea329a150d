package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
)

func TestRebind(t *testing.T) {
	pg, lite := &DB{Postgres: true}, &DB{}
	for _, tc := range []struct{ in, pg string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ?`, `SELECT a FROM t WHERE b = $1`},
		{`WHERE ? = '' OR owner = ? ORDER BY x`, `WHERE $1 = '' OR owner = $2 ORDER BY x`},
		{`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
	} {
		if got := pg.Rebind(tc.in); got != tc.pg {
			t.Errorf("Postgres Rebind(%q) = %q, want %q", tc.in, got, tc.pg)
		}
		if got := lite.Rebind(tc.in); got != tc.in {
			t.Errorf("sqlite Rebind(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}

func TestOpenSQLiteCreatesAPrivateFileAndTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, err := OpenSQLite(context.Background(), path, Schema{Name: "x", SQLite: `CREATE TABLE IF NOT EXISTS x (a TEXT)`})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), `INSERT INTO x (a) VALUES (?)`, "v"); err != nil {
		t.Fatal(err)
	}
	var a string
	if err := db.QueryRow(context.Background(), `SELECT a FROM x WHERE a = ?`, "v").Scan(&a); err != nil || a != "v" {
		t.Fatalf("read back %q, %v", a, err)
	}
	if db.Where != path || db.Postgres {
		t.Fatalf("DB = %+v", db)
	}
}
