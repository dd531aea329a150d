package local

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// We do not use Go-Landlock (github.com/landlock-lsm/go-landlock) because
// its syscall package links libpsx, which, in a cgo binary such as
// palvella, wraps pthread_create and installs a signal handler for the
// whole server. The engine only needs the single-thread case that library
// documents for sandboxing another program: build the ruleset, restrict
// one thread, fork from it (see docs/design/job-containment.md).

// sandboxSpec says what a command may reach on the filesystem: everything
// but Deny (and what lies below), plus Allow even when it lies below a
// denied path.
type sandboxSpec struct {
	Deny  []string `json:"deny"`
	Allow []string `json:"allow"`
}

// landlockABI returns the kernel's Landlock ABI version, 0 without
// Landlock.
func landlockABI() int {
	v, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

// handledAccess is every filesystem right the given ABI knows.
func handledAccess(abi int) uint64 {
	a := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM)
	if abi >= 2 {
		a |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		a |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		a |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return a
}

// fileAccess is the part of the rights that applies to a file (the others
// only make sense on directories).
const fileAccess = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
	unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

// buildRuleset returns a Landlock ruleset file descriptor that grants
// every right on every path outside the denied ones (found by listing the
// directories on the way from / to each denied path, and granting each
// entry that is not on that way), and on the allowed paths. With ABI 6 and
// later, it also scopes signals and abstract Unix sockets to the sandbox,
// so a command cannot signal the engine or the server.
func buildRuleset(s *sandboxSpec) (int, error) {
	abi := landlockABI()
	if abi < 1 {
		return -1, fmt.Errorf("Landlock is not available in this kernel")
	}
	handled := handledAccess(abi)
	attr := unix.LandlockRulesetAttr{Access_fs: handled}
	if abi >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_SIGNAL | unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
	}
	size := unsafe.Sizeof(attr)
	if abi < 6 {
		size = unsafe.Offsetof(attr.Scoped)
	}
	if abi < 4 {
		size = unsafe.Offsetof(attr.Access_net)
	}
	fd, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return -1, fmt.Errorf("create a Landlock ruleset: %w", e)
	}
	rs := int(fd)
	addFD := func(pfd int, access uint64, path string) error {
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
		if _, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs), unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
			return fmt.Errorf("grant %s: %w", path, e)
		}
		return nil
	}
	// What lies outside the denied paths is the same for every command of
	// an engine: it is opened once and kept while the directories listed
	// to find it do not change (grantsOutside).
	err := grants.with(s.Deny, handled, func(gs []grant) error {
		for _, g := range gs {
			if err := addFD(g.fd, g.access, g.path); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, p := range s.Allow {
			g, ok := openGrant(p, handled)
			if !ok {
				continue // gone meanwhile, or unreachable: nothing to grant
			}
			err = addFD(g.fd, g.access, p)
			syscall.Close(g.fd)
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		syscall.Close(rs)
		return -1, err
	}
	return rs, nil
}

// grant is a path granted by a ruleset: an O_PATH descriptor and the
// rights it is granted.
type grant struct {
	path   string
	fd     int
	access uint64
}

// openGrant opens path for a rule granting it handled rights (those that
// apply to a file, for a file).
func openGrant(path string, handled uint64) (grant, bool) {
	pfd, err := syscall.Open(path, unix.O_PATH|syscall.O_CLOEXEC, 0)
	if err != nil {
		return grant{}, false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(pfd, &st); err != nil {
		syscall.Close(pfd)
		return grant{}, false
	}
	access := handled
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		access &= fileAccess
	}
	return grant{path: path, fd: pfd, access: access}, true
}

// grantCache keeps the grants outside the denied paths between commands.
// Finding them lists every directory on the way from / to each denied path
// and opens each entry: with a busy /tmp, hundreds of system calls a
// command. They are kept with the inode and modification time of each
// directory listed, and found again when one changed. A directory changed
// less than a second before it was listed is not trusted to show a later
// change in its time (file systems with coarse timestamps), so it is
// listed again next time.
type grantCache struct {
	mu      sync.Mutex
	key     string
	handled uint64
	stamps  map[string]dirStamp
	grants  []grant
}

type dirStamp struct {
	ino   uint64
	mtime int64
	racy  bool
}

var grants = &grantCache{}

func stampOf(dir string, at time.Time) (dirStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirStamp{}, false
	}
	mtime := st.Mtim.Nano()
	return dirStamp{ino: st.Ino, mtime: mtime, racy: at.UnixNano()-mtime < int64(time.Second)}, true
}

func (c *grantCache) fresh(key string, handled uint64) bool {
	if c.stamps == nil || c.key != key || c.handled != handled {
		return false
	}
	for dir, was := range c.stamps {
		now, ok := stampOf(dir, time.Now())
		if !ok || was.racy || now.ino != was.ino || now.mtime != was.mtime {
			return false
		}
	}
	return true
}

// with calls fn with the grants outside deny, found again if needed. The
// descriptors are valid during fn only.
func (c *grantCache) with(deny []string, handled uint64, fn func([]grant) error) error {
	key := strings.Join(deny, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh(key, handled) {
		for _, g := range c.grants {
			syscall.Close(g.fd)
		}
		c.grants, c.stamps = nil, nil
		at := time.Now()
		stamps := map[string]dirStamp{}
		paths, err := allowedOutside(deny, func(dir string) {
			if st, ok := stampOf(dir, at); ok {
				stamps[dir] = st
			}
		})
		if err != nil {
			return err
		}
		for _, p := range paths {
			if g, ok := openGrant(p, handled); ok {
				c.grants = append(c.grants, g)
			}
		}
		c.key, c.handled, c.stamps = key, handled, stamps
	}
	return fn(c.grants)
}

// allowedOutside lists the paths whose hierarchies together cover the whole
// filesystem except the denied paths: every entry of each directory on the
// way from / to a denied path, except the entries that are (or lead to) a
// denied path. Symbolic links are granted by their target, and a link
// whose target is, holds or lies in a denied path is left out.
func allowedOutside(deny []string, listed func(dir string)) ([]string, error) {
	var clean []string
	for _, d := range deny {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("denied path %q is not absolute", d)
		}
		d = filepath.Clean(d)
		clean = append(clean, d)
		if r, err := filepath.EvalSymlinks(d); err == nil && r != d {
			clean = append(clean, r)
		}
	}
	under := func(p, dir string) bool { // p is dir or below it
		return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
	}
	denied := func(p string) bool {
		for _, d := range clean {
			if under(p, d) {
				return true
			}
		}
		return false
	}
	leadsTo := func(p string) bool { // p holds a denied path
		for _, d := range clean {
			if under(d, p) {
				return true
			}
		}
		return false
	}
	if len(clean) == 0 {
		return []string{"/"}, nil
	}
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		listed(dir)
		f, err := os.Open(dir)
		if err != nil {
			return
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			p := filepath.Join(dir, n)
			if denied(p) {
				continue
			}
			if leadsTo(p) {
				walk(p)
				continue
			}
			real := p
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				r, err := filepath.EvalSymlinks(p)
				if err != nil || denied(r) || leadsTo(r) {
					continue
				}
				real = r
			}
			out = append(out, real)
		}
	}
	if denied("/") {
		return nil, nil
	}
	walk("/")
	return out, nil
}

// startSandboxed starts cmd inside a Landlock domain without a launcher:
// a new goroutine locks itself to its OS thread, sets no_new_privs and
// enters the domain on that thread only (both are per-thread), and starts
// the command from it, so the fork inherits them. The thread must outlive
// the command, whose parent-death signal fires when the thread that forked
// it ends: the goroutine waits, locked, until release is called (once the
// command has exited), then ends still locked, which ends its thread. The
// engine's other threads never enter the domain (the Go runtime does not
// create threads from a locked thread; it asks its template thread).
func startSandboxed(cmd *exec.Cmd, s *sandboxSpec) (release func(), err error) {
	rs, err := buildRuleset(s)
	if err != nil {
		return nil, fmt.Errorf("build the filesystem sandbox: %w", err)
	}
	defer syscall.Close(rs)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			errc <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
		if _, _, e := syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs), 0, 0); e != 0 {
			errc <- fmt.Errorf("enforce the filesystem sandbox: %w", e)
			return
		}
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-done
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}
