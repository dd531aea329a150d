package local

import (
	"bytes"
	"encoding/binary"
	"fmt"
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

// rulesetAttr is the kernel's struct landlock_ruleset_attr as of ABI 6,
// the fields this engine sets. It is declared here rather than taken from
// golang.org/x/sys/unix, whose copy was renamed (Access_fs became
// Handled_access_fs) and grew fields of later ABIs between versions: the
// size given to the kernel must be the one of the fields the ABI knows.
type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64 // ABI 4
	scoped           uint64 // ABI 6
}

// newRuleset creates an empty Landlock ruleset handling every right the
// kernel knows. With ABI 6 and later, it also scopes signals and abstract
// Unix sockets to the sandbox, so a command cannot signal the engine or
// the server.
func newRuleset() (int, uint64, error) {
	abi := landlockABI()
	if abi < 1 {
		return -1, 0, fmt.Errorf("Landlock is not available in this kernel")
	}
	handled := handledAccess(abi)
	attr := rulesetAttr{handledAccessFS: handled}
	if abi >= 6 {
		attr.scoped = unix.LANDLOCK_SCOPE_SIGNAL | unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
	}
	size := unsafe.Sizeof(attr)
	if abi < 6 {
		size = unsafe.Offsetof(attr.scoped)
	}
	if abi < 4 {
		size = unsafe.Offsetof(attr.handledAccessNet)
	}
	fd, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return -1, 0, fmt.Errorf("create a Landlock ruleset: %w", e)
	}
	return int(fd), handled, nil
}

// addGrant adds a rule granting g to the ruleset rs.
func addGrant(rs int, g grant) error {
	rule := unix.LandlockPathBeneathAttr{Allowed_access: g.access, Parent_fd: int32(g.fd)}
	if _, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
		return fmt.Errorf("grant %s: %w", g.path, e)
	}
	return nil
}

// buildRuleset returns a Landlock ruleset file descriptor that grants
// every right on every path outside the denied ones (found by listing the
// directories on the way from / to each denied path, and granting each
// entry that is not on that way), and on the allowed paths. What lies
// outside the denied paths is kept in c between calls.
func buildRuleset(s *sandboxSpec, c *grantCache) (int, error) {
	rs, handled, err := newRuleset()
	if err != nil {
		return -1, err
	}
	// What lies outside the denied paths is the same for every command of
	// an engine: it is opened once and kept while the directories listed
	// to find it do not change (grantCache).
	err = c.with(s.Deny, handled, func(gs []grant, _ uint64) error {
		for _, g := range gs {
			if err := addGrant(rs, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = addAllowed(rs, s.Allow, handled)
	}
	if err != nil {
		syscall.Close(rs)
		return -1, err
	}
	return rs, nil
}

// addAllowed grants the allowed paths that exist.
func addAllowed(rs int, allow []string, handled uint64) error {
	for _, p := range allow {
		g, ok := openGrant(p, handled)
		if !ok {
			continue // gone meanwhile, or unreachable: nothing to grant
		}
		err := addGrant(rs, g)
		syscall.Close(g.fd)
		if err != nil {
			return err
		}
	}
	return nil
}

// keptRuleset is a ruleset built once and shared by every command whose
// sandbox has it as a layer (the layer that denies PALVELLA_HOME and
// deny_paths). Adding its rules, one per entry of each directory on the
// way to a denied path, cost most of a command's start (about 7 µs a rule
// here, and /tmp alone may hold thousands of entries); entering a kept
// ruleset copies them inside the kernel at a fraction of that.
//
// It follows the directories on the way, as listed at each command's
// start (grantCache): an entry that appeared is added to it (a ruleset
// takes more rules after a thread entered it; threads that entered it
// before keep what they had). An entry that went away and whose file
// still exists elsewhere (moved, perhaps into a denied path), a link that
// now leads elsewhere, or another directory on the way, makes it be built
// again (grantCache.gen): a rule it holds may grant what must now be
// denied. An entry that was deleted can never be reached again, but its
// rule keeps the deleted file's inode (and its disk space) until the
// ruleset goes: it is built again once maxStale such rules pile up, or
// staleFor after the first.
type keptRuleset struct {
	mu    sync.Mutex
	cache grantCache
	fd    int // -1: none
	key   string
	gen   uint64    // the cache's gen it was built at
	seq   uint64    // the newest grant it holds (grant.seq)
	stale uint64    // the cache's count of deleted entries when built
	built time.Time // when built
}

const (
	maxStale = 256
	staleFor = 10 * time.Second
)

// ruleset returns a descriptor of the kept ruleset for s, up to date with
// the directories on the way to its denied paths; the caller closes it.
func (k *keptRuleset) ruleset(s *sandboxSpec) (int, error) {
	_, handled, err := rulesetAccess()
	if err != nil {
		return -1, err
	}
	// The allowed paths are part of the key by inode: another directory
	// under the name needs another rule.
	key := fmt.Sprint(handled, s.Deny, s.Allow)
	for _, p := range s.Allow {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			key += fmt.Sprintf(" %d:%d", st.Dev, st.Ino)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := -1
	err = k.cache.with(s.Deny, handled, func(gs []grant, gen uint64) error {
		stale := k.cache.stale - k.stale
		if k.fd < 0 || k.gen != gen || k.key != key || stale >= maxStale || (stale > 0 && time.Since(k.built) >= staleFor) {
			rs, h, err := newRuleset()
			if err != nil {
				return err
			}
			var newest uint64
			for _, g := range gs {
				if err == nil {
					err = addGrant(rs, g)
				}
				newest = max(newest, g.seq)
			}
			if err == nil {
				err = addAllowed(rs, s.Allow, h)
			}
			if err != nil {
				syscall.Close(rs)
				return err
			}
			if k.fd >= 0 {
				syscall.Close(k.fd)
			}
			k.fd, k.gen, k.key, k.seq, k.stale, k.built = rs, gen, key, newest, k.cache.stale, time.Now()
		} else {
			newest := k.seq
			for _, g := range gs {
				if g.seq > k.seq {
					if err := addGrant(k.fd, g); err != nil {
						// Not known to be in the ruleset: build it anew
						// next time.
						syscall.Close(k.fd)
						k.fd = -1
						return err
					}
					newest = max(newest, g.seq)
				}
			}
			k.seq = newest
		}
		fd, err := unix.FcntlInt(uintptr(k.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("duplicate the kept Landlock ruleset: %w", err)
		}
		out = fd
		return nil
	})
	return out, err
}

// rulesetAccess is the kernel's Landlock ABI and the rights it handles.
func rulesetAccess() (int, uint64, error) {
	abi := landlockABI()
	if abi < 1 {
		return 0, 0, fmt.Errorf("Landlock is not available in this kernel")
	}
	return abi, handledAccess(abi), nil
}

var (
	// sharedRuleset is the layer every command enters first: it denies
	// PALVELLA_HOME and deny_paths and grants the workspace root.
	sharedRuleset = &keptRuleset{fd: -1}
	// rootGrants keeps what lies outside the workspace root, for the
	// layer of each command that denies the root but its workspace.
	rootGrants = &grantCache{}
	// oneLayerGrants keeps what lies outside the denied paths for a
	// sandbox of one layer (sandboxFor).
	oneLayerGrants = &grantCache{}
)

// grant is a path granted by a ruleset: an O_PATH descriptor and the
// rights it is granted.
type grant struct {
	path   string
	fd     int
	access uint64
	ino    uint64
	// seq orders the grants of a grantCache by when they were opened: a
	// ruleset that holds every grant up to a seq lacks only those after.
	seq uint64
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
	return grant{path: path, fd: pfd, access: access, ino: st.Ino}, true
}

// grantCache keeps the grants outside the denied paths between commands,
// directory by directory. Finding them lists every directory on the way
// from / to each denied path and opens each entry: with a busy /tmp,
// thousands of system calls. Each directory listed is kept with its inode
// and modification time, and each of its entries with its inode and the
// descriptor that grants it. A directory whose time changed is listed
// again (one getdents), and only the entries that are new or now another
// inode under their name are opened; symbolic links are resolved again.
// A directory changed less than a second before it was listed is not
// trusted to show a later change in its time (file systems with coarse
// timestamps), so it is listed again next time.
type grantCache struct {
	mu      sync.Mutex
	key     string
	handled uint64
	dirs    map[string]*dirGrants
	// gen changes whenever a grant may have to be taken back: an entry
	// gone whose file still exists (moved, perhaps into a denied path), a
	// link that leads elsewhere, another directory under a name on the
	// way, or other denied paths. A ruleset built from the grants of one
	// gen, plus those opened since (grant.seq), grants what a new one
	// would, and perhaps deleted files, which nothing can reach
	// (keptRuleset).
	gen uint64
	// seq is the last grant.seq given; stale counts the entries gone
	// because deleted.
	seq, stale uint64
}

// dirGrants is one listed directory: its stamp when listed and its entries
// by name.
type dirGrants struct {
	stamp   dirStamp
	stamped bool
	entries map[string]entryGrant
}

// entryGrant is an entry of a listed directory: its inode, whether it
// leads to a denied path (its own entries are granted then), and what it
// grants (fd < 0: nothing, as a denied path or a link into one).
type entryGrant struct {
	ino  uint64
	link bool
	walk bool
	g    grant
}

type dirStamp struct {
	ino   uint64
	mtime int64
	racy  bool
}

func stampOf(dir string, at time.Time) (dirStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirStamp{}, false
	}
	mtime := st.Mtim.Nano()
	return dirStamp{ino: st.Ino, mtime: mtime, racy: at.UnixNano()-mtime < int64(time.Second)}, true
}

func (d *dirGrants) close() {
	for _, e := range d.entries {
		if e.g.fd >= 0 {
			syscall.Close(e.g.fd)
		}
	}
	d.entries = nil
}

// forget closes every kept descriptor.
func (c *grantCache) forget() {
	for _, d := range c.dirs {
		d.close()
	}
	c.dirs = nil
	c.gen++
}

// with calls fn with the grants outside deny: every entry of each
// directory on the way from / to a denied path, except the entries that
// are (or lead to) a denied path. Symbolic links are granted by their
// target, and a link whose target is, holds or lies in a denied path is
// left out. The descriptors are valid during fn only; gen is the cache's
// generation (grantCache.gen).
func (c *grantCache) with(deny []string, handled uint64, fn func(gs []grant, gen uint64) error) error {
	var clean []string
	for _, d := range deny {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("denied path %q is not absolute", d)
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
		g, ok := openGrant("/", handled)
		if !ok {
			return fn(nil, 0)
		}
		defer syscall.Close(g.fd)
		return fn([]grant{g}, 0)
	}
	if denied("/") {
		return fn(nil, 0)
	}

	key := strings.Join(clean, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != key || c.handled != handled {
		c.forget()
		c.key, c.handled = key, handled
	}
	if c.dirs == nil {
		c.dirs = map[string]*dirGrants{}
	}
	seen := map[string]bool{}
	var out []grant
	var walk func(dir string) error
	walk = func(dir string) error {
		seen[dir] = true
		d, err := c.listing(dir, handled, denied, leadsTo)
		if err != nil {
			return err
		}
		for name, e := range d.entries {
			switch {
			case e.walk:
				if err := walk(filepath.Join(dir, name)); err != nil {
					return err
				}
			case e.g.fd >= 0:
				out = append(out, e.g)
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return err
	}
	for dir, d := range c.dirs {
		if !seen[dir] {
			d.close()
			delete(c.dirs, dir)
			c.gen++
		}
	}
	return fn(out, c.gen)
}

// listing returns dir's entries and their grants, listing it again if it
// changed since it was last listed.
func (c *grantCache) listing(dir string, handled uint64, denied, leadsTo func(string) bool) (*dirGrants, error) {
	now := time.Now()
	st, ok := stampOf(dir, now)
	d := c.dirs[dir]
	if d != nil && ok && d.stamped && !d.stamp.racy && st.ino == d.stamp.ino && st.mtime == d.stamp.mtime {
		return d, nil
	}
	if d == nil {
		d = &dirGrants{}
		c.dirs[dir] = d
		c.gen++
	}
	// Stamped before the listing: a change made during it shows next time.
	old := d.entries
	if !ok || !d.stamped || st.ino != d.stamp.ino {
		// Another directory under the name, or not known to be the
		// same one: nothing carries over.
		if len(old) > 0 {
			c.gen++
		}
		(&dirGrants{entries: old}).close()
		old = nil
	}
	d.stamp, d.stamped, d.entries = st, ok, map[string]entryGrant{}
	ents, err := readDirents(dir)
	if err != nil {
		// Unreadable or gone: nothing below it is granted, and it is
		// listed again next time.
		d.stamped = false
		if len(old) > 0 {
			c.gen++
		}
		(&dirGrants{entries: old}).close()
		return d, nil
	}
	// gone is called for an entry of old that is no longer granted as it
	// was: deleted (nothing can reach it again), or still somewhere.
	gone := func(o entryGrant) {
		var st syscall.Stat_t
		switch {
		case o.walk:
			c.gen++
		case o.g.fd < 0:
		case syscall.Fstat(o.g.fd, &st) == nil && st.Nlink == 0:
			c.stale++
		default:
			c.gen++
		}
	}
	for _, de := range ents {
		if e, ok := old[de.name]; ok && e.ino == de.ino && !e.link {
			d.entries[de.name] = e
			delete(old, de.name)
			continue
		}
		p := filepath.Join(dir, de.name)
		e := entryGrant{ino: de.ino, g: grant{fd: -1}}
		isLink := de.typ == syscall.DT_LNK
		if de.typ == syscall.DT_UNKNOWN {
			var lst syscall.Stat_t
			isLink = syscall.Lstat(p, &lst) == nil && lst.Mode&syscall.S_IFMT == syscall.S_IFLNK
		}
		e.link = isLink
		switch {
		case denied(p):
		case leadsTo(p):
			e.walk = true
		default:
			real := p
			if isLink {
				r, err := filepath.EvalSymlinks(p)
				if err != nil || denied(r) || leadsTo(r) {
					break
				}
				real = r
			}
			if g, ok := openGrant(real, handled); ok {
				e.g = g
			}
		}
		o, had := old[de.name]
		switch {
		case had && o.walk == e.walk && (o.g.fd >= 0) == (e.g.fd >= 0) && o.g.path == e.g.path && o.g.ino == e.g.ino:
			// A link resolved again to the same file: the same grant.
			e.g.seq = o.g.seq
		default:
			if had {
				gone(o)
			}
			if e.g.fd >= 0 {
				c.seq++
				e.g.seq = c.seq
			}
		}
		if had && o.g.fd >= 0 {
			syscall.Close(o.g.fd) // replaced by e
		}
		delete(old, de.name)
		d.entries[de.name] = e
	}
	for _, o := range old {
		gone(o)
	}
	(&dirGrants{entries: old}).close()
	return d, nil
}

// dirent is an entry of a directory as getdents gives it.
type dirent struct {
	name string
	ino  uint64
	typ  uint8
}

// readDirents lists dir with the inode and type of each entry, which
// getdents gives without a stat per entry.
func readDirents(dir string) ([]dirent, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []dirent
	buf := make([]byte, 32<<10)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 19 || off+reclen > n {
				return nil, fmt.Errorf("list %s: malformed directory entry", dir)
			}
			ino := binary.NativeEndian.Uint64(buf[off:])
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if ino == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			out = append(out, dirent{name: string(name), ino: ino, typ: typ})
		}
	}
}

// commandSandbox is what a command's sandbox denies: shared, when set, is
// the layer every command of the engine enters first (kept between
// commands); own is the command's own layer, built for it.
type commandSandbox struct {
	shared, own *sandboxSpec
}

// sandboxFor splits a command's sandbox into two layers: one shared by
// every command, denying deny and granting the workspace root, and the
// command's own, denying the root but its workspace. A path is reachable
// when both layers grant it, which is what one ruleset denying deny and
// the root but the workspace grants; the shared layer's rules, the many,
// are then added once, not per command. When the root holds a denied path
// (granting it in the shared layer would grant that path), it is one
// layer as before.
func sandboxFor(deny []string, root, ws string) commandSandbox {
	holds := func(dir, p string) bool {
		return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
	}
	variants := func(p string) []string {
		p = filepath.Clean(p)
		out := []string{p}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			out = append(out, r)
		}
		return out
	}
	for _, d := range deny {
		for _, dv := range variants(d) {
			for _, rv := range variants(root) {
				if holds(rv, dv) {
					return commandSandbox{own: &sandboxSpec{Deny: append(append([]string(nil), deny...), root), Allow: []string{ws}}}
				}
			}
		}
	}
	return commandSandbox{
		shared: &sandboxSpec{Deny: append([]string(nil), deny...), Allow: []string{root}},
		own:    &sandboxSpec{Deny: []string{root}, Allow: []string{ws}},
	}
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
func startSandboxed(cmd *exec.Cmd, s commandSandbox) (release func(), err error) {
	var layers []int
	defer func() {
		for _, fd := range layers {
			syscall.Close(fd)
		}
	}()
	if s.shared != nil {
		fd, err := sharedRuleset.ruleset(s.shared)
		if err != nil {
			return nil, fmt.Errorf("build the filesystem sandbox: %w", err)
		}
		layers = append(layers, fd)
	}
	cache := rootGrants
	if s.shared == nil {
		cache = oneLayerGrants
	}
	fd, err := buildRuleset(s.own, cache)
	if err != nil {
		return nil, fmt.Errorf("build the filesystem sandbox: %w", err)
	}
	// The command's own layer first: entering a layer copies the rules of
	// the layers before it, and the shared layer has the many.
	layers = append([]int{fd}, layers...)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			errc <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
		for _, rs := range layers {
			if _, _, e := syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs), 0, 0); e != 0 {
				errc <- fmt.Errorf("enforce the filesystem sandbox: %w", e)
				return
			}
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
