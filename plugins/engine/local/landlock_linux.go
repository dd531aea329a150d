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
	add := func(path string) error {
		pfd, err := syscall.Open(path, unix.O_PATH|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil // gone meanwhile, or unreachable: nothing to grant
		}
		defer syscall.Close(pfd)
		var st syscall.Stat_t
		if err := syscall.Fstat(pfd, &st); err != nil {
			return nil
		}
		access := handled
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			access &= fileAccess
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
		if _, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs), unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
			return fmt.Errorf("grant %s: %w", path, e)
		}
		return nil
	}
	allowed, err := allowedOutside(s.Deny)
	if err != nil {
		syscall.Close(rs)
		return -1, err
	}
	for _, p := range append(allowed, s.Allow...) {
		if err := add(p); err != nil {
			syscall.Close(rs)
			return -1, err
		}
	}
	return rs, nil
}

// allowedOutside lists the paths whose hierarchies together cover the whole
// filesystem except the denied paths: every entry of each directory on the
// way from / to a denied path, except the entries that are (or lead to) a
// denied path. Symbolic links are granted by their target, and a link
// whose target is, holds or lies in a denied path is left out.
func allowedOutside(deny []string) ([]string, error) {
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
