package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestPostgresRestart restarts PostgreSQL (pg_ctl stop -m fast, then start)
// under a plugin in use: a write in flight fails as unavailable and leaves
// nothing behind; calls while it is down fail the same way, in process and
// over gRPC, without the password; once it is back the plugin works
// without being configured again, leases taken before still hold, and a
// watch started before the restart delivers every change made after it,
// including one made by another server while this one was reconnecting.
func TestPostgresRestart(t *testing.T) {
	srv := pgtest.Start(t)
	const pw = "restart-pw-77"
	dsn := strings.Replace(srv.NewDatabase(t), "postgres@", "postgres:"+pw+"@", 1) // trust auth: the password is never asked
	p := configure(t, map[string]any{"dsn": dsn, "connect_timeout": "2s"})
	other := openAt(t, dsn) // a second server on the same database
	remote := sdktest.OverGRPC(t, database.Database(p), database.Service)
	ctx := context.Background()

	before, err := p.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "before"}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events := make(chan database.Event, 100)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- p.Watch(wctx, &database.WatchRequest{Kind: "Run", AfterRevision: before.Revision - 1}, func(ev database.Event) error {
			events <- ev
			return nil
		})
	}()
	expectEvent(t, events, "before")

	if _, err := p.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "held"}); err != nil {
		t.Fatal(err)
	}
	held, err := p.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "w1", TTL: time.Hour})
	if err != nil || held == nil {
		t.Fatalf("Lease: %+v, %v", held, err)
	}

	// A write in flight: it waits for the revision row, which the test
	// holds in an open transaction, when PostgreSQL stops.
	blocker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT revision FROM palvella_revision WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 1)
	go func() {
		_, err := p.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "in-flight"}, Data: []byte("half")})
		inFlight <- err
	}()
	waitForLockWait(t, srv, dsn)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// The stop aborts the blocking transaction and stops the waiting
	// session at the same moment: rarely, the Create gets the lock and
	// commits first. It must then be stored whole; otherwise it fails
	// clearly and nothing of it is stored.
	committed := false
	select {
	case err := <-inFlight:
		if err == nil {
			committed = true
			t.Log("the Create in flight committed before its session was stopped")
		} else {
			assertUnavailable(t, "the Create in flight", err, pw)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the Create in flight did not return after PostgreSQL stopped")
	}
	_ = blocker.Close(ctx)

	began := time.Now()
	_, err = p.Get(ctx, before.Key)
	assertUnavailable(t, "Get while PostgreSQL is down", err, pw)
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Get while PostgreSQL is down took %v; the connect timeout is 2s", d)
	}
	_, err = remote.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs"})
	assertUnavailable(t, "Enqueue over gRPC while PostgreSQL is down", err, pw)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Another server writes at once, likely before this one listens again.
	if _, err := other.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "by-other"}}); err != nil {
		t.Fatalf("Create through another server after the restart: %v", err)
	}
	if got, err := p.Get(ctx, database.Key{Kind: "Run", Name: "in-flight"}); committed && (err != nil || string(got.Data) != "half") {
		t.Fatalf("the Create that committed before the stop: %+v, %v; want it stored whole", got, err)
	} else if !committed && !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("the Create cut off by the restart left something behind (Get error = %v)", err)
	}
	after, err := p.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "after"}})
	if err != nil {
		t.Fatalf("Create after the restart: %v", err)
	}
	if after.Revision <= before.Revision {
		t.Fatalf("revision after the restart %d, want more than %d", after.Revision, before.Revision)
	}
	if _, err := remote.Get(ctx, after.Key); err != nil {
		t.Fatalf("Get over gRPC after the restart: %v", err)
	}
	if err := p.Ack(ctx, &database.AckRequest{ID: held.ID, LeaseToken: held.LeaseToken}); err != nil {
		t.Fatalf("the lease taken before the restart was lost: %v", err)
	}
	if committed {
		expectEvent(t, events, "in-flight")
	}
	expectEvent(t, events, "by-other")
	expectEvent(t, events, "after")
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %v %s", ev.Type, ev.Resource.Key.Name)
	case err := <-watchDone:
		t.Fatalf("the watch ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

// waitForLockWait waits until a session of the database waits for a lock.
func waitForLockWait(t *testing.T, srv *pgtest.Server, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the Create never waited for the revision row")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertUnavailable(t *testing.T, what string, err error, password string) {
	t.Helper()
	if !errors.Is(err, sdk.ErrPluginStopped) {
		t.Fatalf("%s: error = %v, want sdk.ErrPluginStopped (unavailable)", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "unavailable") || strings.Contains(msg, password) {
		t.Fatalf("%s: error %q should say PostgreSQL is unavailable, without the password", what, strings.ReplaceAll(msg, password, "<PASSWORD>"))
	}
}

func expectEvent(t *testing.T, events <-chan database.Event, name string) {
	t.Helper()
	select {
	case ev := <-events:
		if ev.Resource.Key.Name != name || ev.Type != database.EventCreated {
			t.Fatalf("event = %v %s, want the creation of %s", ev.Type, ev.Resource.Key.Name, name)
		}
	case <-time.After(15 * time.Second):
		t.Fatal(fmt.Sprintf("the watch did not deliver the creation of %s", name))
	}
}
