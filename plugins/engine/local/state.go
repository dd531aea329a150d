package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Each workspace ws-XXXX under the root has a record beside it,
// ws-XXXX.state (mode 0600, in the root, which only the engine's user can
// write): the engine process that owns the workspace and the identity of
// every command running in it. An engine that finds the record of a
// workspace whose owner no longer runs kills what the record lists and
// removes the workspace: its job was interrupted.

const stateSuffix = ".state"

// orphanAge is how old a workspace without a record must be before a
// sweep removes it (an engine writes the record right after creating the
// directory).
const orphanAge = time.Minute

// wsRecord is the content of a workspace's record. With cgroups, Cgroup
// is the owner engine's own cgroup directory, under which every command
// it starts runs: written once when the workspace is set up, it lets the
// next engine kill whatever the owner left, so the record is not written
// again at each command's start and end. Without cgroups, Execs lists
// the running commands' process groups.
type wsRecord struct {
	Owner  procIdentity `json:"owner"`
	Cgroup string       `json:"cgroup,omitempty"`
	Execs  []execRecord `json:"execs,omitempty"`
}

// execRecord identifies one running command: its cgroup when it has one,
// and its process group with the leader's start time (so that a reused
// pid is not mistaken for it).
type execRecord struct {
	Cgroup string `json:"cgroup,omitempty"`
	PGID   int    `json:"pgid,omitempty"`
	Start  uint64 `json:"start,omitempty"`
}

func statePath(wsDir string) string { return wsDir + stateSuffix }

// writeRecord replaces a workspace's record atomically.
func writeRecord(wsDir string, rec *wsRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := statePath(wsDir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write workspace record %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write workspace record %s: %w", path, err)
	}
	return nil
}

// sweepRoot kills the commands and removes the workspaces that engines
// which no longer run left under root. dead, when set, is an engine to
// treat as gone even if its process still shows (it is exiting).
// isWorkspaceName reports whether a root's entry is a workspace (ws-X) or
// a kept one (pool-X), or the record of one.
func isWorkspaceName(name string) bool {
	return strings.HasPrefix(name, "ws-") || strings.HasPrefix(name, "pool-")
}

func sweepRoot(root string, dead procIdentity) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("sweep workspace root %s: %w", root, err)
	}
	var errs []error
	recorded := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !isWorkspaceName(name) || !strings.HasSuffix(name, stateSuffix) {
			continue
		}
		ws := strings.TrimSuffix(name, stateSuffix)
		recorded[ws] = true
		path := filepath.Join(root, name)
		var rec wsRecord
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			if fi, serr := os.Stat(path); serr != nil || time.Since(fi.ModTime()) < orphanAge {
				continue // being written, or gone meanwhile
			}
		} else if rec.Owner != dead && rec.Owner.running() {
			continue // its engine still runs
		}
		if rec.Cgroup != "" {
			killEngineCgroup(rec.Cgroup)
		}
		for _, x := range rec.Execs {
			killRecorded(x)
		}
		if err := removeAll(filepath.Join(root, ws)); err != nil {
			errs = append(errs, fmt.Errorf("remove interrupted workspace %s: %w", ws, err))
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !isWorkspaceName(name) || recorded[name] {
			continue
		}
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < orphanAge {
			continue
		}
		if err := removeAll(filepath.Join(root, name)); err != nil {
			errs = append(errs, fmt.Errorf("remove interrupted workspace %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
