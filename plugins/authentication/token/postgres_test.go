package token

import (
	"os"
	"strings"
	"sync"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// The tests on PostgreSQL start a real server (pgtest); it is stopped
// after the package's tests.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestConformanceOnPostgres(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) authentication.Authentication {
		return newConfigured(t, map[string]any{"dsn": pgtest.Shared(t).NewDatabase(t)})
	}, authentication.Service, sdktest.AuthenticationSuite)
}

// Servers on several machines configure the plugin with one dsn: a token
// issued through one is accepted by the others, and a revocation through
// one holds on all of them.
func TestServersOnOneDatabaseShareTokens(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	// Configured at the same moment on an empty database: the tables are
	// created once, under the migration lock, and neither fails.
	plugins := make([]*Plugin, 3)
	var wg sync.WaitGroup
	for i := range plugins {
		wg.Go(func() { plugins[i] = newConfigured(t, map[string]any{"dsn": dsn, "path": "/nonexistent/ignored.db"}) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b, c := plugins[0], plugins[1], plugins[2]
	issued, err := a.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice", Roles: []string{"developer"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := b.Authenticate(ctx, bearer(issued.Token))
	if err != nil || id.Status != authentication.StatusAuthenticated || id.Name != "alice" {
		t.Fatalf("another server's Authenticate = %+v, %v; want alice authenticated", id, err)
	}
	list, err := c.ListTokens(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != issued.Meta.ID {
		t.Fatalf("a third server's ListTokens = %+v, %v; want the one token", list, err)
	}
	if _, err := c.RevokeToken(ctx, issued.Meta.ID); err != nil {
		t.Fatal(err)
	}
	for i, p := range plugins {
		id, err := p.Authenticate(ctx, bearer(issued.Token))
		if err != nil || id.Status == authentication.StatusAuthenticated {
			t.Errorf("server %d accepts a token revoked through another: %+v, %v", i, id, err)
		}
	}
}

// A DSN with a password that cannot connect is reported on config.dsn,
// without the password, and the previous configuration stays.
func TestPostgresDSNErrorsNameTheFieldNotThePassword(t *testing.T) {
	p := newConfigured(t, map[string]any{"dsn": pgtest.Shared(t).NewDatabase(t)})
	issued, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{
		// Nothing listens on port 1.
		"postgres://palvella:hunter2secret@127.0.0.1:1/db?connect_timeout=3",
		"host=127.0.0.1 port=1 user=palvella password=hunter2secret connect_timeout=3",
		"postgres://palvella:hunter2secret@[bad",
		"not a dsn at all hunter2secret",
	} {
		resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
		if err != nil {
			t.Fatalf("Configure(%q): %v", dsn, err)
		}
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != "config.dsn" {
			t.Fatalf("Configure(%q) diagnostics = %+v, want one on config.dsn", dsn, resp.Diagnostics)
		}
		if d := resp.Diagnostics[0]; strings.Contains(d.Summary+d.Detail, "hunter2secret") {
			t.Errorf("the diagnostic repeats the password: %q", d.Summary+d.Detail)
		}
	}
	if id, err := p.Authenticate(ctx, bearer(issued.Token)); err != nil || id.Status != authentication.StatusAuthenticated {
		t.Fatalf("after refused configurations the previous database is gone: %+v, %v", id, err)
	}
}
