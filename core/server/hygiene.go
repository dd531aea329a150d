package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
)

// HTTPTimeouts bound how long a connection to the API or the webhook
// listener may take. Long-lived streams (log and event followers) clear
// the read deadline once their request is read and keep themselves alive
// (core/api), so ReadTimeout does not cut them.
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's headers (default 10s).
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included (default 60s): a
	// client that sends a byte and then nothing is cut off then.
	Read time.Duration
	// Idle bounds how long a kept-alive connection waits for its next
	// request (default 120s).
	Idle time.Duration
}

// Default HTTP timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = DefaultReadHeaderTimeout
	}
	if t.Read <= 0 {
		t.Read = DefaultReadTimeout
	}
	if t.ReadHeader > t.Read {
		t.ReadHeader = t.Read
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// apply sets the timeouts on srv.
func (t HTTPTimeouts) apply(srv *http.Server) *http.Server {
	t = t.withDefaults()
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Idle
	return srv
}

// PrivateFiles are the patterns of the files under PALVELLA_HOME that
// only the server's user may read: the CLI's token, the credential key and
// the databases (with their WAL and shared-memory files).
var PrivateFiles = []string{CLIConfigFile, SecretKeyFile, "palvella.db*", "tokens.db*", "credentials.db*", "credentials.db.key"}

// tightenHome makes the home and the private files in it readable by
// their owner only, saying what it changed: a home created 0755 by an
// older version, or by hand, holds every token and credential.
func tightenHome(home string, log hclog.Logger) []string {
	var notes []string
	if fi, err := os.Stat(home); err == nil && fi.IsDir() && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(home, 0o700); err != nil {
			log.Warn("cannot make the home readable by its owner only", "home", home, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "error", err)
		} else {
			notes = append(notes, fmt.Sprintf("%s was mode %04o: made it 0700 (it holds tokens, keys and credentials)", home, fi.Mode().Perm()))
		}
	}
	for _, pattern := range PrivateFiles {
		matches, _ := filepath.Glob(filepath.Join(home, pattern)) // the patterns are valid
		for _, path := range matches {
			fi, err := os.Lstat(path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
				continue
			}
			if err := os.Chmod(path, 0o600); err != nil {
				log.Warn("cannot make a private file readable by its owner only", "path", path, "error", err)
				continue
			}
			notes = append(notes, fmt.Sprintf("%s was mode %04o: made it 0600", path, fi.Mode().Perm()))
		}
	}
	for _, n := range notes {
		log.Warn("file modes", "fixed", n)
	}
	return notes
}

// InsecureMode reports whether a file's mode lets others than its owner
// read it (any group or other bit).
func InsecureMode(m fs.FileMode) bool { return m.Perm()&0o077 != 0 }
