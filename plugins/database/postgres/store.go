package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock migrations hold: two
// servers that start together on one database migrate one after the other,
// and the second finds nothing left to do.
const migrationLock int64 = 0x70616c76656c6c61 // "palvella"

// settings are the plugin's validated configuration.
type settings struct {
	dsn            string
	maxConns       int32
	connectTimeout time.Duration
	history        time.Duration
	historyChanges int
}

// store is an open connection pool to one PostgreSQL database.
type store struct {
	pool *pgxpool.Pool
	// listenConfig connects the listener (a connection of its own, outside
	// the pool: LISTEN belongs to a session).
	listenConfig *pgx.ConnConfig
	// target names the database for messages: host, port and database,
	// never the password.
	target string
	// secrets are the forms of the DSN's password that redact removes.
	secrets []string
	log     hclog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change notified

	done      chan struct{} // closed by close, to stop the background work
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// passwordForms returns the password of a DSN as written and as it may be
// escaped, to be removed from any message. pgx redacts passwords in its
// own errors; this is the belt to those braces.
func passwordForms(dsn, password string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(password)
	add(url.QueryEscape(password))
	add(url.PathEscape(password))
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			if raw := u.User.String(); strings.Contains(raw, ":") {
				add(raw[strings.Index(raw, ":")+1:])
			}
		}
	}
	// key=value form: password=... up to the next space.
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			add(strings.Trim(v, "'"))
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// redactString removes every form of the password from s, and puts pgx's
// multi-line connection errors (one line per address tried) on one line.
func redactString(s string, secrets []string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, ":\n\t", ": "), "\n\t", "; ")
	for _, p := range secrets {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// parseDSN reads the DSN into a pool configuration. Its error never
// carries the password.
func parseDSN(set settings) (*pgxpool.Config, []string, error) {
	secrets := passwordForms(set.dsn, "")
	cfg, err := pgxpool.ParseConfig(set.dsn)
	if err != nil {
		return nil, secrets, errors.New(redactString(err.Error(), secrets))
	}
	secrets = passwordForms(set.dsn, cfg.ConnConfig.Password)
	if set.maxConns > 0 {
		cfg.MaxConns = set.maxConns
	}
	if set.connectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = set.connectTimeout
	} else if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "palvella"
	}
	// Idle connections are checked after a second (pgxpool's ping) and
	// the pool drops dead ones at once after a restart of PostgreSQL.
	cfg.HealthCheckPeriod = 5 * time.Second
	return cfg, secrets, nil
}

// openStore connects to the database, applies the migrations it lacks and
// starts the listener that wakes watchers.
func openStore(ctx context.Context, set settings, log hclog.Logger) (*store, error) {
	cfg, secrets, err := parseDSN(set)
	if err != nil {
		return nil, fmt.Errorf("read the dsn: %w", err)
	}
	s := &store{
		listenConfig: cfg.ConnConfig.Copy(),
		target:       fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
		secrets:      secrets,
		log:          log,
		changed:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail(ctx, "connect", err)
	}
	s.pool = pool
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, s.fail(ctx, "connect", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.listen()
	if set.history > 0 {
		s.keepHistory(set.history, set.historyChanges)
	}
	return s, nil
}

func (s *store) close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	s.pool.Close()
}

// migrations returns the embedded migrations in version order.
func migrations() ([]database.Migration, error) {
	return database.ReadMigrations(migrationFiles, "migrations")
}

// migrate applies the migrations newer than the schema's version, in one
// transaction that first takes the migration lock (pg_advisory_xact_lock):
// a second server starting at the same moment waits for the first to
// commit, then reads the new version and applies nothing. DDL is
// transactional in PostgreSQL, so a failed migration leaves nothing behind.
func (s *store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS palvella_schema (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(),
			applied_by text NOT NULL DEFAULT current_setting('application_name') || ' pid ' || pg_backend_pid()
		)`); err != nil {
			return fmt.Errorf("create palvella_schema: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM palvella_schema`).Scan(&current); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if latest := ms[len(ms)-1].Version; current > latest {
			return sdk.Errorf(sdk.ErrFailedPrecondition, "", "database %s has schema version %d, newer than this plugin's %d; use a newer plugin", s.target, current, latest)
		}
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO palvella_schema (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return s.fail(ctx, "migrate the schema", err)
	}
	return nil
}

// notify wakes the watchers.
func (s *store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns a channel closed at the next change notified (by this
// server or another) or when the listener reconnects.
func (s *store) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// listen holds a connection that LISTENs for changes and wakes the
// watchers at each. When the connection is lost it reconnects with backoff
// and, once listening again, wakes every watcher: each reads the history
// after the last revision it delivered, so the changes committed while
// nobody listened are not missed (the resync).
func (s *store) listen() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 50 * time.Millisecond
	lost := false
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, s.listenConfig)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN palvella_changes`); err != nil {
				_ = conn.Close(context.Background())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !lost {
				s.log.Warn("cannot listen for changes; watchers poll until the listener is back", "database", s.target, "error", s.redact(err))
				lost = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if lost {
			s.log.Info("listening for changes again; watchers resync", "database", s.target)
			lost = false
		}
		backoff = 50 * time.Millisecond
		s.notify() // resync: anything committed while not listening
		for {
			_, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			s.notify()
		}
		_ = conn.Close(context.Background())
		if ctx.Err() == nil {
			s.log.Warn("lost the connection that listens for changes; reconnecting", "database", s.target)
			lost = true
		}
	}
}

// isUnavailable reports whether err means the database cannot be reached
// or went away: the connection failed or broke, or the server is shutting
// down or starting up.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || pgconn.Timeout(err)
}

// isUniqueViolation reports whether err is PostgreSQL refusing a duplicate
// key.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// redact returns err's message without the password.
func (s *store) redact(err error) string { return redactString(err.Error(), s.secrets) }

// fail turns an error of an operation into what the caller gets: the
// SDK's typed errors pass through (wrapped with what was being done); a
// done context gives its error; a database that cannot be reached gives
// sdk.ErrPluginStopped (the SDK's "unavailable", 503 at the API) saying
// so; anything else is an internal error. No message carries the password.
func (s *store) fail(ctx context.Context, what string, err error) error {
	var typed *sdk.Error
	switch {
	case errors.As(err, &typed):
		return fmt.Errorf("%s: %w", what, err)
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || isUnavailable(err)):
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case isUnavailable(err):
		return &sdk.Error{Kind: sdk.ErrPluginStopped, Message: fmt.Sprintf("%s: PostgreSQL at %s is unavailable: %s", what, s.target, s.redact(err))}
	}
	return &sdk.Error{Kind: sdk.ErrInternal, Message: fmt.Sprintf("%s: %s", what, s.redact(err))}
}

// randomID returns 128 random bits, hex encoded.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// errNotConfigured is returned by calls made before Configure.
var errNotConfigured = sdk.Errorf(sdk.ErrFailedPrecondition, "", "database-postgres is not configured")
