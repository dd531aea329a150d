package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// A workspace whose commands left nothing in it is kept for the next
// Setup instead of being removed: the directories are renamed, not
// created and deleted again. On a filesystem that allocates inodes
// slowly (ext4 without a journal checks every recently freed inode), the
// three directories and the record of a fresh workspace cost about as
// much CPU as the engine's whole Exec of `true` (docs/performance.md).
//
// A kept workspace is indistinguishable from a fresh one: its directory
// holds exactly work and tmp, all three directories with the mode, owner
// and extended attributes Setup gives them, and the few regular files
// left in work and tmp (a run action leaves its outputs file) are
// removed. Anything else (a directory or many files left behind, a
// changed mode, a symbolic link in place of work) and it is removed as
// before. Kept only when the engine runs commands
// in cgroups (no process of a job outlives its command). At Teardown it is renamed to a name no
// workspace ID takes (pool-...), so its old ID and workdir are gone at
// once; Setup renames it to a new ID. Its record moves with it and still
// names this engine, so an engine that is killed leaves kept workspaces
// that the next one sweeps like any other.

// maxPooled is the most workspaces kept at once.
const maxPooled = 16

// pooled is a kept workspace.
type pooled struct {
	dir    string // root/pool-...
	root   string
	uid    int // the owner of its directories (-1: the engine's)
	gid    int
	cgroup string
}

// keep moves a torn-down workspace to the pool when it is clean; it
// reports false, having changed nothing, when it is not (or the pool is
// full), and the caller removes it.
func (p *Plugin) keep(ws *workspace, cfg config) bool {
	// Only where commands run in cgroups: the end of a command then kills
	// every process it started, so none can write into the workspace
	// once another job has it.
	if ws.cgroup == "" || filepath.Dir(ws.dir) != cfg.root || !tidyWorkspace(ws.dir, cfg.jobUID, cfg.jobGID) {
		return false
	}
	p.mu.Lock()
	full := len(p.pool) >= maxPooled
	p.mu.Unlock()
	if full {
		return false
	}
	dir, err := moveWorkspace(ws.dir, cfg.root, "pool-")
	if err != nil {
		return false
	}
	p.mu.Lock()
	p.pool = append(p.pool, pooled{dir: dir, root: cfg.root, uid: cfg.jobUID, gid: cfg.jobGID, cgroup: ws.cgroup})
	p.mu.Unlock()
	return true
}

// reuse returns a kept workspace under cfg's root, renamed to a new ID,
// or "" when there is none.
func (p *Plugin) reuse(cfg config, cgroup string) string {
	for {
		p.mu.Lock()
		k := -1
		for i := len(p.pool) - 1; i >= 0; i-- {
			if x := p.pool[i]; x.root == cfg.root && x.uid == cfg.jobUID && x.gid == cfg.jobGID && x.cgroup == cgroup {
				k = i
				break
			}
		}
		if k < 0 {
			p.mu.Unlock()
			return ""
		}
		x := p.pool[k]
		p.pool = append(p.pool[:k], p.pool[k+1:]...)
		p.mu.Unlock()
		dir, err := moveWorkspace(x.dir, x.root, "ws-")
		if err == nil {
			return dir
		}
		_ = removeAll(x.dir)
		_ = os.Remove(statePath(x.dir))
	}
}

// moveWorkspace renames a workspace and its record to a new random name
// with prefix under root. The record moves first: a crash in between
// leaves a record without a directory and a directory without a record,
// which the sweep removes.
func moveWorkspace(dir, root, prefix string) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", err
	}
	to := filepath.Join(root, prefix+hex.EncodeToString(b[:]))
	if err := renameNoReplace(statePath(dir), statePath(to)); err != nil {
		return "", err
	}
	if err := renameNoReplace(dir, to); err != nil {
		_ = os.Rename(statePath(to), statePath(dir))
		return "", err
	}
	return to, nil
}

// maxLeftFiles is the most regular files a kept workspace's work and
// tmp may hold at Teardown (a run action's outputs file, say): they are
// removed and the workspace kept.
const maxLeftFiles = 4

// tidyWorkspace reports whether dir is as Setup made it once the few
// regular files its commands left in work and tmp are removed: exactly
// work and tmp, and the three directories with mode 0700, the expected
// owner and no extended attributes (a default ACL, say). It removes
// those files only when the rest holds.
func tidyWorkspace(dir string, uid, gid int) bool {
	names, err := readNames(dir, 3)
	if err != nil || len(names) != 2 || names[0] != "tmp" && names[0] != "work" || names[1] != "tmp" && names[1] != "work" || names[0] == names[1] {
		return false
	}
	var files []string
	for _, d := range []string{dir, filepath.Join(dir, "work"), filepath.Join(dir, "tmp")} {
		if !pristineDir(d, uid, gid) {
			return false
		}
		if d == dir {
			continue
		}
		left, err := readNames(d, maxLeftFiles+1)
		if err != nil || len(files)+len(left) > maxLeftFiles {
			return false
		}
		for _, name := range left {
			f := filepath.Join(d, name)
			if !plainFile(f) {
				return false
			}
			files = append(files, f)
		}
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return false
		}
	}
	return true
}

func readNames(dir string, n int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return names, err
}
