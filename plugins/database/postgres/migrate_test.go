package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// appliedMigrations reads palvella_schema: how many times each version was
// recorded.
func appliedMigrations(t *testing.T, dsn string) map[int]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM palvella_schema`)
	if err != nil {
		t.Fatalf("read palvella_schema: %v", err)
	}
	out := map[int]int{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out[v]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServersStartingTogetherMigrateOnce configures several plugins on one
// empty database at the same moment, as servers starting together do:
// every one starts, each migration is applied once, and they share the
// data.
func TestServersStartingTogetherMigrateOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	const n = 6
	plugins := make([]*Plugin, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p := New()
			resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
			if err == nil && sdk.HasErrors(resp.Diagnostics) {
				err = fmt.Errorf("%+v", resp.Diagnostics)
			}
			plugins[i], errs[i] = p, err
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("server %d failed to start: %v", i, err)
		}
		t.Cleanup(func() { _ = plugins[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	applied := appliedMigrations(t, dsn)
	if len(applied) != len(ms) {
		t.Errorf("palvella_schema records %d versions, want %d", len(applied), len(ms))
	}
	for _, m := range ms {
		if applied[m.Version] != 1 {
			t.Errorf("migration %s recorded %d times, want once", m.Name, applied[m.Version])
		}
	}
	ctx := context.Background()
	created, err := plugins[0].Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "shared"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := plugins[n-1].Get(ctx, created.Key)
	if err != nil || got.Revision != created.Revision {
		t.Fatalf("another server reads %+v, %v; want revision %d", got, err, created.Revision)
	}
}

// TestMigrationWaitsForTheLock holds the migration lock as a server that
// is migrating would: a starting server waits for it, creates nothing
// meanwhile, and migrates once it is released.
func TestMigrationWaitsForTheLock(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	p := New()
	t.Cleanup(func() { _ = p.Close() })
	go func() {
		resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
		if err == nil && sdk.HasErrors(resp.Diagnostics) {
			err = fmt.Errorf("%+v", resp.Diagnostics)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Configure returned (%v) while another server held the migration lock", err)
	case <-time.After(700 * time.Millisecond):
	}
	var exists bool
	if err := holder.QueryRow(ctx, `SELECT to_regclass('palvella_schema') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("a server waiting for the migration lock created palvella_schema")
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Configure after the lock was released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Configure did not finish after the migration lock was released")
	}
	if applied := appliedMigrations(t, dsn); applied[1] != 1 {
		t.Fatalf("migrations applied = %v, want version 1 once", applied)
	}
}

// TestANewerSchemaIsRefused: a database migrated by a newer plugin is not
// used by an older one, which says so.
func TestANewerSchemaIsRefused(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	p := openAt(t, dsn)
	_ = p.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO palvella_schema (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	resp, err := New().Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
	if err != nil {
		t.Fatal(err)
	}
	if !sdk.HasErrors(resp.Diagnostics) || !containsAll(resp.Diagnostics[0].Detail, "schema version 9999", "newer plugin") {
		t.Fatalf("diagnostics = %+v, want a refusal naming schema version 9999", resp.Diagnostics)
	}
}
