package local

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// defaultJobID is the uid and gid commands run as when the engine runs as
// root and no user is configured: 65534, nobody/nogroup on most
// distributions, which owns no files.
const defaultJobID = 65534

// tmpRootPrefix names the workspace roots the engine makes in the temporary
// directory when commands cannot reach the configured one.
const tmpRootPrefix = "palvella-workspaces-"

// fallbackParent is where the engine makes a workspace root when commands
// cannot reach the configured one: $TMPDIR when it is set, else /var/tmp
// when it is a directory every user may write (sticky), else the system's
// temporary directory. /var/tmp rather than /tmp because a command's
// sandbox lists every entry of the directories on the way to the root and
// the command's own layer adds a rule for each (docs/design/job-containment.md):
// /tmp commonly holds thousands of entries, /var/tmp a few.
func fallbackParent() string {
	if os.Getenv("TMPDIR") == "" {
		var st syscall.Stat_t
		if syscall.Stat("/var/tmp", &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR && st.Mode&0o1777 == 0o1777 {
			return "/var/tmp"
		}
	}
	return filepath.Clean(os.TempDir())
}

// resolve decides, from the configuration and what this host offers, which
// user commands run as, whether they are sandboxed and how they are
// contained.
func resolve(cfg config) (config, []sdk.Diagnostic) {
	var diags []sdk.Diagnostic
	bad := func(field, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary, Detail: detail})
	}
	euid := os.Geteuid()
	cfg.jobUID, cfg.jobGID = -1, -1
	switch {
	case cfg.user != "":
		uid, gid, err := lookupUser(cfg.user)
		switch {
		case err != nil:
			bad("user", "unknown user", err.Error())
		case uid == euid:
			// The engine's own user: nothing to switch.
		case euid != 0:
			bad("user", "cannot run commands as another user", fmt.Sprintf("the engine runs as uid %d, not root, so it cannot switch to uid %d", euid, uid))
		default:
			cfg.jobUID, cfg.jobGID = uid, gid
		}
	case euid == 0:
		cfg.jobUID, cfg.jobGID = defaultJobID, defaultJobID
	}

	if cfg.jobUID >= 0 {
		if blocker := unreachable(cfg.root, cfg.jobUID, cfg.jobGID); blocker != "" {
			alt := filepath.Join(fallbackParent(), tmpRootPrefix+shortHash(cfg.root))
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Field: "config.root",
				Summary: "workspaces moved where the commands' user can reach them",
				Detail: fmt.Sprintf("uid %d cannot enter %s (on the way to %s), so workspaces go to %s",
					cfg.jobUID, blocker, cfg.root, alt)})
			cfg.root = alt
		}
	}

	abi := landlockABI()
	switch cfg.sandbox {
	case "auto":
		cfg.landlock = abi >= 1
	case "landlock":
		if abi < 1 {
			bad("sandbox", "Landlock is not available", "this kernel has no Landlock (Linux 5.13 or later with landlock in the lsm= list): use sandbox auto or none")
		}
		cfg.landlock = abi >= 1
	default:
		cfg.landlock = false
	}

	switch cfg.containment {
	case "auto", "cgroup":
		_, err := host.cgroups()
		cfg.cgroup = err == nil
		if err != nil && cfg.containment == "cgroup" {
			bad("containment", "cannot give commands their own cgroup", err.Error())
		}
	default:
		cfg.cgroup = false
	}
	return cfg, diags
}

// lookupUser turns "name", "uid" or "uid:gid" into a uid and gid.
func lookupUser(s string) (int, int, error) {
	if u, g, ok := strings.Cut(s, ":"); ok {
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return 0, 0, fmt.Errorf("%q is not uid:gid", s)
		}
		return uid, gid, nil
	}
	if uid, err := strconv.Atoi(s); err == nil {
		if uid < 0 {
			return 0, 0, fmt.Errorf("%q is not a uid", s)
		}
		gid := uid
		if u, err := user.LookupId(s); err == nil {
			if g, err := strconv.Atoi(u.Gid); err == nil {
				gid = g
			}
		}
		return uid, gid, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %q has uid %q and gid %q", s, u.Uid, u.Gid)
	}
	return uid, gid, nil
}

// unreachable returns the first existing directory on the way to path
// (path included) that uid/gid cannot search, or "".
func unreachable(path string, uid, gid int) string {
	dir := "/"
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	for i := 0; i <= len(parts); i++ {
		if i > 0 {
			if parts[i-1] == "" {
				continue
			}
			dir = filepath.Join(dir, parts[i-1])
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return "" // what does not exist yet the engine creates
		}
		var bit uint32 = 0o001
		switch {
		case int(st.Uid) == uid:
			bit = 0o100
		case int(st.Gid) == gid:
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			return dir
		}
	}
	return ""
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// prepareRoot creates the workspace root. When commands run as another
// user, the root must be the engine user's own and not writable by
// others, and is made searchable (0711) so that they can reach their
// workspace, not list the others.
func prepareRoot(cfg config) error {
	if err := os.MkdirAll(cfg.root, 0o700); err != nil {
		return err
	}
	if cfg.jobUID < 0 {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Stat(cfg.root, &st); err != nil {
		return err
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s belongs to uid %d with mode %o: the root must belong to the engine's user (uid %d) and be writable by it alone",
			cfg.root, st.Uid, st.Mode&0o7777, os.Geteuid())
	}
	return os.Chmod(cfg.root, 0o711)
}
