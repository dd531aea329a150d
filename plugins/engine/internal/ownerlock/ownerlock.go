// Package ownerlock tells the live engine processes of one machine from
// killed ones, for engines that leave things on a daemon or a cluster
// (containers, jobs) which a killed process cannot remove itself.
//
// Each engine process takes a random owner ID, marks what it creates with
// it, and holds an flock on <dir>/<owner>.lock while it lives; the kernel
// drops the lock however the process dies. At its next start, an engine
// removes what owners whose lock no one holds left behind (Gone).
package ownerlock

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Locks are the owner locks one process holds, one per state directory.
// The zero value holds none.
type Locks struct {
	mu    sync.Mutex
	files map[string]*os.File
}

// Hold takes owner's lock in dir, creating dir, and keeps it for as long
// as the process lives; holding it again is a no-op.
func (l *Locks) Hold(dir, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.files[dir] != nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, owner+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if l.files == nil {
		l.files = map[string]*os.File{}
	}
	l.files[dir] = f
	return nil
}

// Gone reports whether the owner whose lock file is in dir has no process
// any more; it removes the file of a gone owner. An owner that is not a
// plain file name is never gone.
func Gone(dir, owner string) bool {
	if owner == "" || strings.ContainsAny(owner, "/\x00") || owner == "." || owner == ".." {
		return false
	}
	name := filepath.Join(dir, owner+".lock")
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	os.Remove(name)
	return true
}

// DirID names a state directory. Engines label what they create with the
// ID of the directory that holds their lock, and a sweep judges only what
// carries its own directory's ID: an owner whose lock is in another
// directory (another worker's home on the same machine) is not gone
// because its lock is not here.
func DirID(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return hex.EncodeToString(sum[:8])
}

// RandomID is n hexadecimal digits from the system's random source.
func RandomID(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}
