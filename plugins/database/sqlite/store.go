package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a writer waits for another one before failing.
const busyTimeout = 10 * time.Second

// store is an open database file.
type store struct {
	db   *sql.DB
	path string
	// now is the clock; tests replace it.
	now func() time.Time

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each committed change
	// kindChanged holds, by kind, a channel closed at the next committed
	// change of that kind: a watch wakes for its own kind only, not for
	// every write (a job's change used to wake the watches of runs and
	// pipeline versions too, each of which read the history for nothing).
	kindChanged map[string]chan struct{}

	done      chan struct{} // closed by close, to stop the background work
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// openStore opens (creating if needed) the database at path and applies the
// migrations it lacks.
func openStore(ctx context.Context, path string) (*store, error) {
	return openStoreSync(ctx, path, SyncNormal)
}

// Values of the synchronous setting.
const (
	// SyncNormal (the default) makes a commit durable against the process
	// being killed, the case a server must survive; with WAL, a power loss
	// may lose the last commits but never corrupts the file.
	SyncNormal = "normal"
	// SyncFull also survives a power loss, at the cost of an fsync per
	// commit.
	SyncFull = "full"
)

// openStoreSync opens the database with the given synchronous setting.
func openStoreSync(ctx context.Context, path, sync string) (*store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve database path: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("create the database's directory: %w", err)
	}
	// Readable by its owner only; sqlite gives its WAL and shared-memory
	// files the database's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	_ = f.Close() // only created here; sqlite opens it again
	// WAL lets readers (List, Watch) run beside the writer; synchronous
	// is NORMAL or FULL (see SyncNormal); _txlock=immediate takes the
	// write lock at BEGIN, so two writers queue on the busy timeout instead
	// of failing to upgrade a read lock.
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", strings.ToUpper(sync))
	params.Set("_foreign_keys", "on")
	params.Set("_busy_timeout", strconv.Itoa(int(busyTimeout/time.Millisecond)))
	params.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	s := &store{db: db, path: abs, now: time.Now, changed: make(chan struct{}), done: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close() // the migration error says more
		return nil, err
	}
	return s, nil
}

func (s *store) close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	return s.db.Close()
}

// migrations returns the embedded migrations in version order.
func migrations() ([]database.Migration, error) {
	return database.ReadMigrations(migrationFiles, "migrations")
}

// migrate applies, each in its own transaction, the migrations newer than
// the schema version recorded in the database.
func (s *store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	current, err := s.schemaVersion(ctx)
	if err != nil {
		return err
	}
	if latest := ms[len(ms)-1].Version; current > latest {
		return fmt.Errorf("database %s has schema version %d, newer than this plugin's %d; use a newer plugin", s.path, current, latest)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func (s *store) schemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// tx runs fn in a write transaction and commits it if fn returns nil.
// Nothing fn wrote survives an error.
func (s *store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one to report
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// currentRevision reads the last revision handed out. sqlite_sequence keeps
// it even when the history is compacted.
const currentRevision = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)`

// read runs fn in a read transaction on one connection, so that every
// query of fn sees the same snapshot. It does not take the write lock.
func (s *store) read(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get a connection: %w", err)
	}
	defer conn.Close()
	// BeginTx would take the write lock (_txlock=immediate); a plain BEGIN
	// is deferred and takes a read snapshot at the first read.
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	ferr := fn(conn)
	// End the transaction even when ctx is done, before the connection goes
	// back to the pool.
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection rather than reuse it mid-transaction
		if ferr == nil {
			ferr = fmt.Errorf("end read: %w", err)
		}
	}
	return ferr
}

// notify wakes the watchers after a committed change of the given kinds.
func (s *store) notify(kinds ...string) {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	for _, k := range kinds {
		if ch, ok := s.kindChanged[k]; ok {
			close(ch)
			delete(s.kindChanged, k)
		}
	}
	s.mu.Unlock()
}

// changesOf returns a channel closed at the next committed change of kind.
func (s *store) changesOf(kind string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.kindChanged[kind]
	if !ok {
		if s.kindChanged == nil {
			s.kindChanged = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		s.kindChanged[kind] = ch
	}
	return ch
}

// changes returns a channel closed at the next committed change.
func (s *store) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// isUniqueViolation reports whether err is sqlite refusing a duplicate key.
func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}

// randomID returns 128 random bits, hex encoded.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func toNanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// errNotConfigured is returned by calls made before Configure.
var errNotConfigured = sdk.Errorf(sdk.ErrFailedPrecondition, "", "database-sqlite is not configured")
