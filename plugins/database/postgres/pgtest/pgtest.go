// Package pgtest starts real PostgreSQL servers for tests: initdb into a
// temporary directory, pg_ctl on 127.0.0.1 with a free port, fsync off.
// Run as root, the server runs as the postgres user (PostgreSQL refuses
// root). Without PostgreSQL installed, tests fail saying how to install it;
// they never skip.
//
// A package's tests share one server (Shared), and take a fresh database
// each (NewDatabase); a test that stops or restarts PostgreSQL starts its
// own (Start).
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names the directory of initdb and pg_ctl when they are not in
// Debian's /usr/lib/postgresql/VERSION/bin or on PATH.
const BinEnv = "PALVELLA_PG_BIN"

// InstallHint says how to get PostgreSQL.
const InstallHint = "PostgreSQL is not installed: install it (Debian/Ubuntu: apt-get update && apt-get install -y postgresql; " +
	".ci/run does this) or set " + BinEnv + " to the directory holding initdb and pg_ctl"

// Server is a PostgreSQL server run by a test.
type Server struct {
	Dir  string // holds data/, the socket and server.log
	Bin  string // directory of initdb and pg_ctl
	Port int

	asPostgres bool
	seq        atomic.Int64
}

// BinDir finds the directory of initdb and pg_ctl.
func BinDir() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err != nil {
			return "", fmt.Errorf("%s=%s has no pg_ctl (%w); %s", BinEnv, d, err, InstallHint)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%s", InstallHint)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start starts a new server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { s.Remove() })
	return s
}

// StartServer starts a new server; Remove stops it and removes its files.
func StartServer() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "palvella-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Bin: bin, asPostgres: os.Geteuid() == 0}
	if s.asPostgres {
		// PostgreSQL refuses to run as root: its files belong to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user, which the postgresql package creates: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := s.run(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken between the probe and the start: try again.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err = s.Start(); err == nil {
			return s, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// run runs a PostgreSQL program, as the postgres user when this process
// is root.
func (s *Server) run(prog string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if s.asPostgres {
		quoted := []string{shellQuote(prog)}
		for _, a := range args {
			quoted = append(quoted, shellQuote(a))
		}
		cmd = exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	} else {
		cmd = exec.Command(prog, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = s.Dir
	err := cmd.Run()
	return out.String(), err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the server (again) on its port and waits until it accepts
// connections.
func (s *Server) Start() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.Port, s.Dir)
	if out, err := s.run(filepath.Join(s.Bin, "pg_ctl"), "-D", s.data(), "-l", filepath.Join(s.Dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, s.LogTail())
	}
	return nil
}

// Stop stops the server (fast: open sessions are disconnected).
func (s *Server) Stop() error {
	if out, err := s.run(filepath.Join(s.Bin, "pg_ctl"), "-D", s.data(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Restart is pg_ctl restart -m fast: every session is cut off.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Remove stops the server if it runs and removes its files.
func (s *Server) Remove() {
	_, _ = s.run(filepath.Join(s.Bin, "pg_ctl"), "-D", s.data(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.Dir)
}

// LogTail is the end of the server's log, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// DSN is the connection string of a database of the server.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, database)
}

// NewDatabase creates an empty database and returns its DSN; it is dropped
// when the test ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.seq.Add(1))
	if err := s.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Connections still open (a killed plugin's) are cut off.
		_ = s.Exec(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.DSN(name)
}

// Exec runs SQL in a database of the server.
func (s *Server) Exec(ctx context.Context, database, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN(database))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the server the tests of this process share, started at
// the first call. Main (or Stop in TestMain) stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = StartServer() })
	if sharedErr != nil {
		t.Fatalf("start PostgreSQL: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server if one was started.
func StopShared() {
	if shared != nil {
		shared.Remove()
	}
}

// Main runs a package's tests and stops the shared server after them:
// func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	defer StopShared()
	return m.Run()
}
