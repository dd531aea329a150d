package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// The builtin database-postgres against a real PostgreSQL started here
// (pgtest; without PostgreSQL installed these tests fail saying how to
// install it).

// TestDatabasePostgresOverARealProcess runs the database conformance kit
// against `palvella plugin serve database-postgres`, as the server runs it,
// and checks that what it committed survives the process being killed.
func TestDatabasePostgresOverARealProcess(t *testing.T) {
	srv := pgtest.Start(t)
	t.Run("conformance", func(t *testing.T) {
		sdktest.DatabaseSuite(t, func(t *testing.T) database.Database {
			c, _ := launchBuiltin[database.Database](t, "database-postgres", sdk.CategoryDatabase, map[string]any{"dsn": srv.NewDatabase(t)}, nil)
			return c
		})
	})
	t.Run("survives SIGKILL", func(t *testing.T) {
		var mu sync.Mutex
		dsns := map[string]string{}
		sdktest.DatabaseDurability(t, func(t *testing.T, dir string) (database.Database, func()) {
			mu.Lock()
			if dsns[dir] == "" {
				dsns[dir] = srv.NewDatabase(t)
			}
			dsn := dsns[dir]
			mu.Unlock()
			c, p := launchBuiltin[database.Database](t, "database-postgres", sdk.CategoryDatabase, map[string]any{"dsn": dsn}, nil)
			return c, func() {
				pid := p.Client.ReattachConfig().Pid
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill %d: %v", pid, err)
				}
				p.Client.Kill()
			}
		})
	})
}

// TestServerOnPostgres configures a server in its palvella.yaml to keep
// its state in PostgreSQL, the DSN read from the environment, runs the
// shared ci example through the CLI, and finds the run in PostgreSQL (and
// no sqlite file) and again after the server restarts.
func TestServerOnPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	// Trust authentication: the password is never asked, but it is in the
	// DSN, and the test looks for it everywhere the server writes.
	const pw = "dsn-pw-4711"
	dsn := strings.Replace(srv.NewDatabase(t), "postgres@", "postgres:"+pw+"@", 1)
	home := t.TempDir()
	conf := "apiVersion: palvella.dev/v1\nkind: ServerConfig\ndatabase:\n  plugin: database-postgres\n  config:\n    dsn: {from_env: PALVELLA_DATABASE_DSN}\n    max_conns: 8\n"
	if err := os.WriteFile(filepath.Join(home, "palvella.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PALVELLA_DATABASE_DSN", dsn)

	out, errOut, code := palvella(t, home, "server", "--check-config")
	if code != 0 || !strings.Contains(out+errOut, "database-postgres") || strings.Contains(out+errOut, pw) {
		t.Fatalf("server --check-config: exit %d, it should name database-postgres, not the password:\n%s%s", code, out, errOut)
	}

	s := startServer(t, home)
	exampleCI(t, s)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var runs int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM palvella_resources WHERE kind = $1 AND name = 'ci-1'`, resource.KindRun).Scan(&runs); err != nil {
		t.Fatalf("read the runs in PostgreSQL: %v", err)
	}
	if runs != 1 {
		t.Fatalf("PostgreSQL holds %d runs named ci-1, want 1", runs)
	}
	if m, _ := filepath.Glob(filepath.Join(home, "palvella.db*")); len(m) > 0 {
		t.Fatalf("a server configured with database-postgres wrote sqlite files: %v", m)
	}

	s.stop(syscall.SIGTERM)
	s.start()
	if r := s.run("ci-1"); r.Status != resource.StatusSuccess {
		t.Fatalf("after the server restarted, run ci-1 is %s", r.Status)
	}
	s.mustCLI("pipeline", "run", "ci", "--wait")
	if r := s.run("ci-2"); r.Status != resource.StatusSuccess {
		t.Fatalf("run ci-2 on the restarted server = %s", r.Status)
	}

	// PostgreSQL stops under the running server: the API answers that the
	// database is unavailable, the server keeps running, and once
	// PostgreSQL is back it runs pipelines again without a restart.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = s.cli("run", "get", "ci-1")
	if code == 0 || !strings.Contains(out+errOut, "unavailable") || strings.Contains(out+errOut, "password") {
		t.Fatalf("run get while PostgreSQL is down: exit %d, want a failure saying the database is unavailable:\n%s%s", code, out, errOut)
	}
	t.Logf("run get while PostgreSQL is down: %s", strings.TrimSpace(errOut))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := s.cli("run", "get", "ci-1"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not serve again within 30s of PostgreSQL's restart:\n%s", s.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mustCLI("pipeline", "run", "ci", "--wait")
	if r := s.run("ci-3"); r.Status != resource.StatusSuccess {
		t.Fatalf("run ci-3 after PostgreSQL restarted = %s", r.Status)
	}

	// The DSN as a credential: stored while the server runs, then named
	// in the file instead of the environment.
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("credential", "set", "palvella-dsn", "--from-file", dsnFile)
	s.stop(syscall.SIGTERM)
	conf = strings.Replace(conf, "{from_env: PALVELLA_DATABASE_DSN}", "{from_credential: palvella-dsn}", 1)
	if err := os.WriteFile(filepath.Join(home, "palvella.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PALVELLA_DATABASE_DSN", "not-a-dsn")
	s.start()
	if r := s.run("ci-3"); r.Status != resource.StatusSuccess {
		t.Fatalf("with the DSN from a credential, run ci-3 = %s", r.Status)
	}

	if log := readFile(t, filepath.Join(home, "server.log")); strings.Contains(log, pw) {
		t.Fatal("the server's log shows the DSN's password")
	}
}
