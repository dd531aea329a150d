package pgtest

import (
	"context"
	"strings"
	"testing"
)

// TestMissingPostgreSQLSaysHowToInstallIt: without initdb and pg_ctl the
// helper fails (tests using it fail, never skip) saying how to install
// PostgreSQL.
func TestMissingPostgreSQLSaysHowToInstallIt(t *testing.T) {
	t.Setenv(BinEnv, t.TempDir())
	_, err := StartServer()
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") {
		t.Fatalf("StartServer without PostgreSQL: error = %v, want one saying how to install it", err)
	}
}

// TestStartStopStart: a server accepts connections, refuses them once
// stopped, and accepts them again once started.
func TestStartStopStart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", "SELECT 1"); err != nil {
		t.Fatalf("query a started server: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "postgres", "SELECT 1"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "postgres", "SELECT 1"); err != nil {
		t.Fatalf("query a restarted server: %v", err)
	}
}
