package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// openAt returns a plugin configured with the database file at path.
func openAt(t testing.TB, path string) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"path": path}})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %+v", resp.Diagnostics)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newTestPlugin(t *testing.T) database.Database {
	return openAt(t, filepath.Join(t.TempDir(), "palvella.db"))
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, newTestPlugin, database.Service, sdktest.DatabaseSuite)
}

// TestDurability closes the file and opens it again; the core repeats the
// check with a plugin process killed by SIGKILL.
func TestDurability(t *testing.T) {
	open := func(t *testing.T, dir string) (database.Database, func()) {
		p := openAt(t, filepath.Join(dir, "palvella.db"))
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
}

func TestConfigureWithEmptyConfigUsesTheDefaultPath(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure with no config: %v %+v", err, resp)
	}
	t.Cleanup(func() { _ = p.Close() })
	if got := p.st.path; got != DefaultPath() {
		t.Fatalf("database opened at %s, want %s", got, DefaultPath())
	}
	if _, err := p.Enqueue(context.Background(), &database.EnqueueRequest{Queue: "default-path-test"}); err != nil {
		t.Fatalf("Enqueue into the default database: %v", err)
	}
}

func TestConfigureReportsBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		field  string
	}{
		{"path not a string", map[string]any{"path": 3.0}, "config.path"},
		{"empty path", map[string]any{"path": ""}, "config.path"},
		{"unknown setting", map[string]any{"dsn": "x"}, "config.dsn"},
		{"path under a file", map[string]any{"path": filepath.Join(writeFile(t), "db.sqlite")}, "config.path"},
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

func TestCallsBeforeConfigureFail(t *testing.T) {
	_, err := New().Get(context.Background(), database.Key{Kind: "Run", Name: "x"})
	if !errorsIs(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Get before Configure error = %v, want sdk.ErrFailedPrecondition", err)
	}
}
