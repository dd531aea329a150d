package postgres

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// serveEnv makes the test binary serve the plugin instead of running tests,
// so a test can start it as a real plugin process.
const serveEnv = "PALVELLA_TEST_SERVE_DATABASE_POSTGRES"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		os.Exit(Serve())
	}
	os.Exit(pgtest.Main(m))
}

// configure returns a plugin configured with config, closed when the test
// ends.
func configure(t testing.TB, config map[string]any) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: config})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %+v", resp.Diagnostics)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// openAt returns a plugin configured with the database dsn names.
func openAt(t testing.TB, dsn string) *Plugin {
	t.Helper()
	return configure(t, map[string]any{"dsn": dsn})
}

// newTestPlugin returns a plugin on a fresh database of the shared server.
func newTestPlugin(t *testing.T) database.Database {
	return openAt(t, pgtest.Shared(t).NewDatabase(t))
}

// launch starts the test binary as the plugin process, as the core starts
// plugins (handshake, gRPC, automatic mutual TLS), configured with dsn.
func launch(t *testing.T, dsn string) (database.Database, *sdktest.Process) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(sdktest.MinimalEnv(), serveEnv+"=1")
	p := sdktest.Launch(t, cmd)
	db := sdktest.Dispense[database.Database](t, p, sdk.CategoryDatabase)
	resp, err := db.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"dsn": dsn}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %+v", err, resp)
	}
	return db, p
}

// databases maps the directory DatabaseDurability hands out to a database
// of the shared server, so that opening the same directory again opens the
// same database.
type databases struct {
	mu   sync.Mutex
	dsns map[string]string
}

func (d *databases) dsn(t *testing.T, dir string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dsns == nil {
		d.dsns = map[string]string{}
	}
	if _, ok := d.dsns[dir]; !ok {
		d.dsns[dir] = pgtest.Shared(t).NewDatabase(t)
	}
	return d.dsns[dir]
}

func itoa(n int) string { return strconv.Itoa(n) }
