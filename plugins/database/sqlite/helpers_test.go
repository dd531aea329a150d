package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var errorsIs = errors.Is

// serveEnv makes the test binary serve the plugin instead of running tests,
// so a test can start it as a real plugin process.
const serveEnv = "PALVELLA_TEST_SERVE_DATABASE_SQLITE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		os.Exit(Serve())
	}
	os.Exit(m.Run())
}

// writeFile creates a regular file and returns its path.
func writeFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testStore opens a store on a fresh file with a clock the test moves.
func testStore(t *testing.T) (*store, *clock) {
	t.Helper()
	st, err := openStore(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("openStore: %v", err)
	}
	t.Cleanup(func() { _ = st.close() })
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st.now = c.now
	return st, c
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
