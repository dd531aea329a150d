package pluginhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// A plugin binary is checked at every launch against the sha256 its spec
// records, but hashed only while its identity is unknown: once hashed, the
// file is kept open and a later launch only checks, with fstat on the open
// file and stat on the path, that the path still names that same file,
// unchanged (device, inode, size, mode, mtime and ctime), and then executes
// it through the open file (/proc/self/fd/N), so that what runs is the file
// that was hashed whatever is renamed over the path meanwhile. A file
// changed in place gets a new ctime (which no system call can set back), a
// file renamed over the path is another inode: either way the binary is
// hashed again, and refused unless it still has the recorded sha256. See
// docs/design/plugin-launch.md for what this guards against and what not.

// racyAge is how old a file's last change must be before its identity is
// trusted in place of a hash. A file changed within the clock tick (or the
// file system's timestamp granularity) in which it was checked could be
// changed again without a new ctime; as git does with "racily clean" index
// entries, such a file is hashed again at its next launch.
var racyAge = 2 * time.Second

// executables holds the binaries this process has hashed. It is shared by
// every Manager of the process: file descriptors, like the files' identity,
// belong to the process.
var executables = &execCache{held: map[string]*heldExec{}, hashing: map[string]chan struct{}{}}

type execCache struct {
	mu      sync.Mutex
	held    map[string]*heldExec     // by path as given in the spec
	hashing map[string]chan struct{} // paths being hashed, closed when done
	hashes  int                      // files hashed, for tests
}

// heldExec is an open plugin binary with the sha256 of its content.
type heldExec struct {
	path string
	f    *os.File
	sum  []byte
	id   fileID
	// exe is what to execute: the open file through /proc, or the path
	// where the system has no such thing.
	exe string
	// refs counts the launches using f; dropped is set once the entry is
	// no longer in the cache, and f is closed when both allow it.
	refs    int
	dropped bool
}

// errMismatch is a binary whose sha256 is not the recorded one; classify
// makes it a ProblemChecksum.
var errMismatch = fmt.Errorf("%w", goplugin.ErrChecksumsDoNotMatch)

// acquire returns the binary at path, known to have the sha256 want, open
// for one launch: hashed now if its identity is not known or has changed.
// The caller executes h.exe and then calls release.
func (c *execCache) acquire(path string, want []byte) (*heldExec, error) {
	c.sweep(path)
	for {
		c.mu.Lock()
		if h := c.held[path]; h != nil {
			if h.unchanged() {
				if !bytes.Equal(h.sum, want) {
					c.mu.Unlock()
					return nil, errMismatch
				}
				h.refs++
				c.mu.Unlock()
				return h, nil
			}
			c.dropLocked(h)
		}
		if wait, ok := c.hashing[path]; ok {
			// Another launch is hashing this file (the builtins share one
			// binary): wait for it rather than hash it twice.
			c.mu.Unlock()
			<-wait
			continue
		}
		done := make(chan struct{})
		c.hashing[path] = done
		c.hashes++
		c.mu.Unlock()

		h, err := hashOpen(path)
		c.mu.Lock()
		delete(c.hashing, path)
		close(done)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if !bytes.Equal(h.sum, want) {
			c.mu.Unlock()
			h.f.Close()
			return nil, errMismatch
		}
		h.refs = 1
		if h.trusted() {
			c.held[path] = h
		} else {
			h.dropped = true
		}
		c.mu.Unlock()
		return h, nil
	}
}

// sweep lets go of the files held for other paths than except that no
// longer name them (a plugin upgraded and its old binary removed, or
// replaced): a held descriptor would keep a removed file's blocks on disk.
// It costs a stat per file held, a handful.
func (c *execCache) sweep(except string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, h := range c.held {
		if p == except {
			continue
		}
		if at, ok := pathIdentity(p); !ok || at != h.id {
			c.dropLocked(h)
		}
	}
}

// release ends a launch's use of h.
func (c *execCache) release(h *heldExec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.refs--
	if h.dropped && h.refs == 0 {
		h.f.Close()
	}
}

func (c *execCache) dropLocked(h *heldExec) {
	if c.held[h.path] == h {
		delete(c.held, h.path)
	}
	h.dropped = true
	if h.refs == 0 {
		h.f.Close()
	}
}

// remember hashes path and keeps its identity, as acquire would.
func (c *execCache) remember(path string) (string, error) {
	c.mu.Lock()
	c.hashes++
	c.mu.Unlock()
	h, err := hashOpen(path)
	if err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.sum)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !h.trusted() {
		h.f.Close()
		return sum, nil
	}
	if old := c.held[path]; old != nil {
		c.dropLocked(old)
	}
	c.held[path] = h
	return sum, nil
}

// hashOpen opens path and hashes it through the open file. The file must
// not change while it is read.
func hashOpen(path string) (*heldExec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	before, okBefore := fileIdentity(f)
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	after, okAfter := fileIdentity(f)
	if okBefore != okAfter || before != after {
		f.Close()
		return nil, fmt.Errorf("hash %s: the file changed while it was read: %w", path, errMismatch)
	}
	h := &heldExec{path: path, f: f, sum: hash.Sum(nil), exe: path}
	if okAfter {
		h.id = after
		h.exe = execThrough(f, after, path)
	}
	return h, nil
}

// unchanged reports whether the open file and the path are still the file
// that was hashed, with the same content.
func (h *heldExec) unchanged() bool {
	if h.exe == h.path {
		return false // no identity to check on this system: hash again
	}
	now, ok := fileIdentity(h.f)
	if !ok || now != h.id {
		return false
	}
	at, ok := pathIdentity(h.path)
	return ok && at == h.id
}

// trusted reports whether h's identity may stand for its content at later
// launches: it can be checked on this system and its last change is older
// than racyAge.
func (h *heldExec) trusted() bool {
	return h.exe != h.path && time.Since(time.Unix(0, h.id.ctime)) > racyAge
}

// SHA256Executable returns the hex sha256 of a plugin binary, as
// SHA256File does, and keeps the file open with its identity, so that the
// first launch of a plugin from it needs no second hash. The server uses
// it for its own binary, which runs every builtin plugin.
func SHA256Executable(path string) (string, error) {
	return executables.remember(path)
}
