package postgres

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, newTestPlugin, database.Service, sdktest.DatabaseSuite)
}

// TestConformanceOverARealProcess runs the kit against the plugin as the
// core runs it: a separate process behind the go-plugin handshake.
func TestConformanceOverARealProcess(t *testing.T) {
	sdktest.DatabaseSuite(t, func(t *testing.T) database.Database {
		db, _ := launch(t, pgtest.Shared(t).NewDatabase(t))
		return db
	})
}

// TestDurability closes the plugin and opens the same database again, in
// process, over gRPC, and with the plugin process killed by SIGKILL
// between the writes and the checks.
func TestDurability(t *testing.T) {
	var dbs databases
	open := func(t *testing.T, dir string) (database.Database, func()) {
		p := openAt(t, dbs.dsn(t, dir))
		return p, func() {
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	t.Run("in-process", func(t *testing.T) { sdktest.DatabaseDurability(t, open) })
	t.Run("grpc", func(t *testing.T) {
		sdktest.DatabaseDurability(t, func(t *testing.T, dir string) (database.Database, func()) {
			db, stop := open(t, dir)
			return sdktest.OverGRPC(t, db, database.Service), stop
		})
	})
	t.Run("process killed by SIGKILL", func(t *testing.T) {
		sdktest.DatabaseDurability(t, func(t *testing.T, dir string) (database.Database, func()) {
			db, p := launch(t, dbs.dsn(t, dir))
			return db, func() {
				if err := syscall.Kill(p.Client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill the plugin process: %v", err)
				}
				p.Client.Kill()
			}
		})
	})
}

func TestConfigureReportsBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		field  string
	}{
		{"dsn not a string", map[string]any{"dsn": 3.0}, "config.dsn"},
		{"unknown setting", map[string]any{"dsn": "postgres://x@127.0.0.1/db", "path": "x"}, "config.path"},
		{"max_conns zero", map[string]any{"dsn": "postgres://x@127.0.0.1/db", "max_conns": 0.0}, "config.max_conns"},
		{"max_conns fraction", map[string]any{"dsn": "postgres://x@127.0.0.1/db", "max_conns": 2.5}, "config.max_conns"},
		{"bad connect_timeout", map[string]any{"dsn": "postgres://x@127.0.0.1/db", "connect_timeout": "soon"}, "config.connect_timeout"},
		{"bad history", map[string]any{"dsn": "postgres://x@127.0.0.1/db", "history": "-1h"}, "config.history"},
		{"unparsable dsn", map[string]any{"dsn": "postgres://u:pw@127.0.0.1:notaport/db"}, "config.dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := New().Configure(context.Background(), &sdk.ConfigureRequest{Config: tc.config})
			if err != nil {
				t.Fatalf("Configure returned an error instead of a diagnostic: %v", err)
			}
			if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != tc.field || resp.Diagnostics[0].Severity != sdk.SeverityError {
				t.Fatalf("diagnostics = %+v, want one error about %s", resp.Diagnostics, tc.field)
			}
		})
	}
}

// TestConfiguredWithoutADSN: the plugin host configures every plugin it
// launches (plugin describe too); without a dsn the plugin warns and its
// calls say what is missing.
func TestConfiguredWithoutADSN(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{})
	if err != nil || sdk.HasErrors(resp.Diagnostics) || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Severity != sdk.SeverityWarning {
		t.Fatalf("Configure without a dsn = %+v, %v; want one warning", resp, err)
	}
	_, err = p.List(context.Background(), &database.ListRequest{Kind: "Run"})
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !errors.As(err, &typed) || typed.Field != "config.dsn" || !strings.Contains(err.Error(), "PALVELLA_DATABASE_DSN") {
		t.Fatalf("List without a dsn error = %v, want sdk.ErrFailedPrecondition about config.dsn saying how to give it", err)
	}
}

func TestCallsBeforeConfigureFail(t *testing.T) {
	_, err := New().Get(context.Background(), database.Key{Kind: "Run", Name: "x"})
	if !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Get before Configure error = %v, want sdk.ErrFailedPrecondition", err)
	}
}

// TestThePasswordNeverShows gives DSNs with a password that cannot be
// parsed or whose server is not there, in both DSN forms: the
// diagnostics say what is wrong without the password.
func TestThePasswordNeverShows(t *testing.T) {
	const pw = "Sup3r-s3cret-pw"
	port := pgtest.Shared(t).Port + 1 // nothing listens there... most likely; the test checks the message either way
	for _, dsn := range []string{
		"postgres://palvella:" + pw + "@127.0.0.1:notaport/palvella",
		"postgres://palvella:" + pw + "@127.0.0.1:" + itoa(port) + "/palvella?connect_timeout=2",
		"host=127.0.0.1 port=" + itoa(port) + " user=palvella password=" + pw + " dbname=palvella connect_timeout=2",
		"host=127.0.0.1 port=zz user=palvella password=" + pw,
		"postgres://palvella:" + pw + "@127.0.0.1:" + itoa(pgtest.Shared(t).Port) + "/no_such_database",
	} {
		resp, err := New().Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
		if err != nil {
			t.Fatalf("Configure: %v", err)
		}
		if !sdk.HasErrors(resp.Diagnostics) {
			t.Fatalf("Configure with %s succeeded", strings.ReplaceAll(dsn, pw, "xxx"))
		}
		d := resp.Diagnostics[0]
		if strings.Contains(d.Summary+d.Detail, pw) || strings.Contains(d.Summary+d.Detail, "s3cret") {
			t.Errorf("the diagnostic shows the password: %s: %s", d.Summary, strings.ReplaceAll(d.Detail, pw, "<PASSWORD>"))
		}
		if d.Field != "config.dsn" || d.Detail == "" {
			t.Errorf("diagnostic = %+v, want config.dsn with a detail", d)
		}
		t.Logf("%s: %s", d.Summary, d.Detail)
	}
}
