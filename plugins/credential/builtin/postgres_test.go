package builtin

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// The tests on PostgreSQL start a real server (pgtest); it is stopped
// after the package's tests.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestConformanceOnPostgres(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) credential.Credential {
		return configured(t, map[string]any{"dsn": pgtest.Shared(t).NewDatabase(t), "key": randomKey(t)})
	}, credential.Service, sdktest.CredentialSuite)
}

// Servers on several machines configure the plugin with one dsn and one
// key: a credential put through one is read through another; a server
// with another key is refused at configuration, naming the key's field.
func TestServersOnOneDatabaseShareCredentials(t *testing.T) {
	dsn, key := pgtest.Shared(t).NewDatabase(t), randomKey(t)
	a := configured(t, map[string]any{"dsn": dsn, "key": key})
	b := configured(t, map[string]any{"dsn": dsn, "key": key})
	put(t, a, "deploy-key", "s3cr3t-value")
	got, err := b.Get(ctx, "deploy-key")
	if err != nil || string(got.Data["value"]) != "s3cr3t-value" {
		t.Fatalf("another server's Get = %+v, %v; want the value put through the first", got, err)
	}
	if err := b.Delete(ctx, "deploy-key"); err != nil {
		t.Fatal(err)
	}
	if list, err := a.List(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("List after another server's Delete = %+v, %v; want none", list, err)
	}
	put(t, a, "team.a", "1")
	put(t, a, "team.b", "2")
	put(t, a, "other", "3")
	if list, err := b.List(ctx, "team."); err != nil || len(list) != 2 || list[0].Name != "team.a" || list[1].Name != "team.b" {
		t.Fatalf("List(team.) = %+v, %v; want team.a and team.b", list, err)
	}

	diags := configure(t, New(), map[string]any{"dsn": dsn, "key": randomKey(t)})
	if len(diags) != 1 || diags[0].Field != "config.key" || !strings.Contains(diags[0].Summary, "not the key they were stored with") {
		t.Fatalf("a server with another key: diagnostics %+v, want one on config.key saying the key is not theirs", diags)
	}
	if strings.Contains(diags[0].Summary, dsn) {
		t.Errorf("the diagnostic repeats the dsn: %q", diags[0].Summary)
	}
}

// The database holds no value in clear.
func TestPostgresHoldsNoValueInClear(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	p := configured(t, map[string]any{"dsn": dsn, "key": randomKey(t)})
	put(t, p, "api", "clear-text-canary-7731")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int
	var dump []byte
	err = conn.QueryRow(ctx, `SELECT count(*), string_agg(convert_to(name || type || labels, 'UTF8') || nonce || sealed, '') FROM palvella_credentials`).Scan(&rows, &dump)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1 || !bytes.Contains(dump, []byte("api")) {
		t.Fatalf("the table holds %d rows (%q), want the one credential", rows, dump)
	}
	if bytes.Contains(dump, []byte("clear-text-canary-7731")) {
		t.Fatal("the credential's value is in the database in clear")
	}
}
