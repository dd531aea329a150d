package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/database"
)

func TestOpenTurnsOnWALForeignKeysAndFullSync(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	// Hold one connection so the pragmas are read on a second, pooled one too.
	busy, err := st.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var mode string
	var fk, sync int
	if err := st.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || sync != 1 {
		t.Fatalf("journal_mode=%s foreign_keys=%d synchronous=%d, want wal, 1, 1 (NORMAL)", mode, fk, sync)
	}
	full, err := openStoreSync(ctx, filepath.Join(t.TempDir(), "full.db"), SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer full.close()
	if err := full.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 {
		t.Fatalf("synchronous=full opened with synchronous=%d, want 2 (FULL)", sync)
	}
}

func TestMigrationsApplyOnceInOrder(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			t.Fatalf("migrations out of order: %s after %s", ms[i].Name, ms[i-1].Name)
		}
	}
	path := filepath.Join(t.TempDir(), "m.db")
	ctx := context.Background()
	for range 2 { // the second open finds everything applied
		st, err := openStore(ctx, path)
		if err != nil {
			t.Fatalf("openStore: %v", err)
		}
		v, err := st.schemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := ms[len(ms)-1].Version; v != want {
			t.Fatalf("schema version %d, want %d", v, want)
		}
		var rows int
		if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != len(ms) {
			t.Fatalf("schema_version has %d rows, want one per migration (%d)", rows, len(ms))
		}
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestANewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	ctx := context.Background()
	st, err := openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (9999)`); err != nil {
		t.Fatal(err)
	}
	_ = st.close()
	if st, err := openStore(ctx, path); err == nil {
		_ = st.close()
		t.Fatal("a database with a newer schema was opened")
	}
}

func TestAFailedTransactionLeavesNothing(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := st.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO queue_items (id, queue, payload, available_at, enqueued_at) VALUES ('x', 'q', x'', 0, 0)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("tx returned %v, want the function's error", err)
	}
	var n int
	if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM queue_items`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a rolled back transaction left %d rows", n)
	}
}

func TestReopenKeepsCommittedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "durable.db")
	ctx := context.Background()
	st, err := openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	key := database.Key{Kind: "Run", Name: "r"}
	created, err := st.create(ctx, &database.Resource{Key: key, Data: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st, err = openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	got, err := st.get(ctx, key)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if got.Revision != created.Revision || string(got.Data) != "kept" {
		t.Fatalf("after reopening Get = %+v, want revision %d with data kept", got, created.Revision)
	}
}

func BenchmarkCreateGet(b *testing.B) {
	st, err := openStore(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	ctx := context.Background()
	data := []byte(`{"metadata":{"name":"x"},"spec":{"jobs":["build","test","deploy"]},"status":{"phase":"running"}}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := database.Key{Kind: "Run", Namespace: "bench", Name: "run-" + itoa(i)}
		i++
		if _, err := st.create(ctx, &database.Resource{Key: key, Labels: map[string]string{"pipeline": "web"}, Data: data}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
