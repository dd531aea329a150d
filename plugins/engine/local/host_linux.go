package local

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// engineHost is what the engine process sets up once, whatever number of
// Plugin values it holds: its identity, its cgroup directory, its
// supervisor and, in process-group mode, the reaper of adopted orphans.
type engineHost struct {
	once sync.Once
	self procIdentity

	cgOnce sync.Once
	cg     *cgroupHost
	cgErr  error

	supMu sync.Mutex
	sup   *os.File // write end of the supervisor's stdin; never closed
	roots map[string]bool

	reaperOnce sync.Once
	reaperErr  error
	// rmu guards known and running, and is held across every fork so
	// that a child is known before anyone looks for orphans.
	rmu     sync.Mutex
	known   map[int]bool            // children this process started itself
	running map[*pgContainer]uint64 // process-group commands by start time
	// windows are the lifetimes of the last process-group commands that
	// ended: only an orphan born within one of them can be theirs.
	windows []window
}

// window is a command's lifetime in clock ticks since boot, the unit of
// start times in /proc/PID/stat.
type window struct{ start, end uint64 }

// maxWindows bounds the lifetimes kept: an orphan of an older command was
// killed long ago.
const maxWindows = 256

// nowTicks is the time in clock ticks since boot (USER_HZ is 100 on
// Linux whatever the kernel's HZ).
func nowTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return ^uint64(0)
	}
	return uint64(ts.Sec)*100 + uint64(ts.Nsec)/10_000_000
}

var host = &engineHost{roots: map[string]bool{}, known: map[int]bool{}, running: map[*pgContainer]uint64{}}

func (h *engineHost) init() {
	h.once.Do(func() {
		// The engine holds the credentials of the jobs it runs: a process
		// that is not dumpable has its /proc entries (environ, mem, cwd,
		// root...) closed to processes of its own user without
		// CAP_SYS_PTRACE, commands included. Exec resets it, so the
		// commands themselves are not affected.
		_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
		h.self = selfIdentity()
		h.startSupervisor()
	})
}

// startSupervisor starts the helper that cleans up after this process
// when it exits, however it dies (see superviseMain).
func (h *engineHost) startSupervisor() {
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: no supervisor (create pipe: %v); commands may outlive a killed engine until the next engine starts\n", Name, err)
		return
	}
	cmd := exec.Command("/proc/self/exe", helperSupervise)
	cmd.Stdin, cmd.Stderr, cmd.Dir, cmd.Env = pr, os.Stderr, "/", []string{}
	// Its own session: a terminal's Ctrl-C to the server must not reach
	// it before it has done its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	h.rmu.Lock()
	err = cmd.Start()
	if err == nil {
		h.known[cmd.Process.Pid] = true
	}
	h.rmu.Unlock()
	pr.Close()
	if err != nil {
		pw.Close()
		fmt.Fprintf(os.Stderr, "%s: no supervisor (%v); commands may outlive a killed engine until the next engine starts\n", Name, err)
		return
	}
	go func() {
		_ = cmd.Wait()
		h.rmu.Lock()
		delete(h.known, cmd.Process.Pid)
		h.rmu.Unlock()
	}()
	h.sup = pw
	h.tell(fmt.Sprintf("owner %d %d", h.self.PID, h.self.Start))
}

func (h *engineHost) tell(line string) {
	h.supMu.Lock()
	defer h.supMu.Unlock()
	if h.sup != nil {
		_, _ = h.sup.WriteString(line + "\n")
	}
}

// useRoot sweeps a workspace root the first time this process uses it and
// tells the supervisor about it.
func (h *engineHost) useRoot(root string) error {
	h.init()
	h.supMu.Lock()
	seen := h.roots[root]
	h.roots[root] = true
	h.supMu.Unlock()
	if seen {
		return nil
	}
	h.tell("root " + root)
	return sweepRoot(root, procIdentity{})
}

// cgroups returns the engine's cgroup directory, creating it on first use.
func (h *engineHost) cgroups() (*cgroupHost, error) {
	h.cgOnce.Do(func() {
		h.init()
		h.cg, h.cgErr = newCgroupHost(h.self)
		if h.cgErr == nil {
			h.tell("cgroup " + h.cg.instance)
		}
	})
	return h.cg, h.cgErr
}

// enableReaper makes this process the subreaper of its descendants, so
// that processes whose parent exits are re-parented here rather than to
// init, where the engine can find them.
func (h *engineHost) enableReaper() error {
	h.reaperOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			h.reaperErr = fmt.Errorf("become a child subreaper: %w", err)
			return
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGCHLD)
		go func() {
			tick := time.NewTicker(10 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ch:
				case <-tick.C:
				}
				h.settleOrphans()
			}
		}()
	})
	return h.reaperErr
}

// orphans are this process's children that it did not start: processes of
// commands whose parent exited. Children in this process's own process
// group are left out, so that children other code of the process starts
// (which stay in its group) are never taken for them.
func (h *engineHost) orphans() []procInfo {
	self, pgrp := os.Getpid(), syscall.Getpgrp()
	var out []procInfo
	for _, p := range children(self) {
		if p.ppid == self && !h.known[p.pid] && p.pgid != pgrp {
			out = append(out, p)
		}
	}
	return out
}

// children lists the children of process pid, through the children files
// of its threads when the kernel has them (a few reads), else by scanning
// every process.
func children(pid int) []procInfo {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil || len(tasks) == 0 {
		return allProcs()
	}
	var out []procInfo
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				if p, ok := readProc(c); ok {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// settleOrphans reaps orphans that exited and kills those that belong to
// a process-group command that has ended: born during its lifetime, and
// before every running command began (else it may be a running command's).
// It repeats while killing orphans makes new ones (their children).
// Orphans born outside every command's lifetime are left alone: they are
// not the engine's (a test process that launches engines as children, and
// is itself an engine, sees their supervisors re-parented to it).
func (h *engineHost) settleOrphans() {
	for range 50 {
		h.rmu.Lock()
		killed := 0
		for _, o := range h.orphans() {
			ours := false
			for _, w := range h.windows {
				if w.start <= o.start && o.start <= w.end {
					ours = true
					break
				}
			}
			if !ours {
				continue
			}
			if o.state == 'Z' {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(o.pid, &ws, syscall.WNOHANG, nil)
				continue
			}
			owned := false
			for _, start := range h.running {
				if start <= o.start {
					owned = true
					break
				}
			}
			if owned {
				continue
			}
			if o.pgid == o.pid {
				_ = syscall.Kill(-o.pgid, syscall.SIGKILL)
			}
			_ = syscall.Kill(o.pid, syscall.SIGKILL)
			killed++
		}
		h.rmu.Unlock()
		if killed == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// container holds one command's processes and stops them all.
type container interface {
	// started is called with the command's pid right after the fork,
	// with host.rmu held.
	started(pid int)
	record() execRecord
	signal(sig syscall.Signal)
	alive() bool
	kill()
	// release frees what the container holds once its processes are gone.
	release() error
}

// newContainer prepares cmd to start contained: in a fresh cgroup when
// useCgroup, else in its own process group under this process as
// subreaper. Both ways the direct child dies with the engine.
func newContainer(cmd *exec.Cmd, useCgroup bool) (container, error) {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.SysProcAttr = attr
	if useCgroup {
		h, err := host.cgroups()
		if err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
		cg, err := h.newCgroup()
		if err != nil {
			return nil, err
		}
		attr.UseCgroupFD, attr.CgroupFD = true, int(cg.fd.Fd())
		return &cgContainer{cg: cg}, nil
	}
	if err := host.enableReaper(); err != nil {
		return nil, err
	}
	return &pgContainer{}, nil
}

type cgContainer struct {
	cg  *cgroup
	pid int
}

// started is called with host.rmu held, as for pgContainer: the command is
// known, so the reaper (when another command enabled it) never takes it
// for an orphan and reaps its exit status from under Wait.
func (c *cgContainer) started(pid int) {
	c.pid = pid
	c.cg.close()
	host.known[pid] = true
}
func (c *cgContainer) record() execRecord {
	return execRecord{Cgroup: c.cg.dir}
}
func (c *cgContainer) signal(sig syscall.Signal) { c.cg.signal(sig) }
func (c *cgContainer) alive() bool               { return c.cg.populated() }
func (c *cgContainer) kill()                     { c.cg.kill() }
func (c *cgContainer) release() error {
	host.rmu.Lock()
	delete(host.known, c.pid)
	host.rmu.Unlock()
	if c.cg.populated() {
		c.cg.kill()
	}
	return c.cg.remove(5 * time.Second)
}

type pgContainer struct {
	pgid  int
	start uint64
}

func (c *pgContainer) started(pid int) {
	c.pgid = pid
	info, _ := readProc(pid)
	c.start = info.start
	host.known[pid] = true
	host.running[c] = c.start
}
func (c *pgContainer) record() execRecord { return execRecord{PGID: c.pgid, Start: c.start} }
func (c *pgContainer) signal(sig syscall.Signal) {
	_ = syscall.Kill(-c.pgid, sig) // ESRCH: already gone
}
func (c *pgContainer) alive() bool { return syscall.Kill(-c.pgid, 0) == nil }
func (c *pgContainer) kill()       { _ = syscall.Kill(-c.pgid, syscall.SIGKILL) }
func (c *pgContainer) release() error {
	host.rmu.Lock()
	delete(host.known, c.pgid)
	delete(host.running, c)
	host.windows = append(host.windows, window{start: c.start, end: ^uint64(0)})
	if len(host.windows) > maxWindows {
		host.windows = host.windows[len(host.windows)-maxWindows:]
	}
	host.rmu.Unlock()
	// Processes the command left that changed their process group were
	// re-parented here when their parent exited: kill those no other
	// running command can own. Until that is done, the command's lifetime
	// is open-ended, so that children its orphans fork meanwhile count.
	host.settleOrphans()
	host.rmu.Lock()
	for i := range host.windows {
		if host.windows[i].start == c.start && host.windows[i].end == ^uint64(0) {
			host.windows[i].end = nowTicks() + 1
			break
		}
	}
	host.rmu.Unlock()
	return nil
}

// engineCgroup is the directory under which this engine runs its commands,
// "" without cgroups.
func engineCgroup() string {
	h, err := host.cgroups()
	if err != nil {
		return ""
	}
	return h.instance
}

// killEngineCgroup kills everything a previous engine left in its cgroup
// directory (named in its workspaces' records) and removes it.
func killEngineCgroup(dir string) {
	if !strings.HasPrefix(filepath.Base(dir), "palvella-engine-") {
		return // not an engine's cgroup: never touch it
	}
	killCgroup(dir, fileExists(filepath.Join(dir, "cgroup.kill")), time.Now().Add(5*time.Second))
	_ = removeCgroup(dir, 5*time.Second)
}

// killRecorded kills what a record of a previous engine lists.
func killRecorded(x execRecord) {
	if x.Cgroup != "" && strings.Contains(x.Cgroup, "/palvella-engine-") {
		killCgroup(x.Cgroup, fileExists(filepath.Join(x.Cgroup, "cgroup.kill")), time.Now().Add(5*time.Second))
		if removeCgroup(x.Cgroup, 5*time.Second) == nil {
			_ = os.Remove(filepath.Dir(x.Cgroup)) // the old engine's directory, once empty
		}
	}
	if x.PGID > 0 {
		killGroupMembers(x.PGID, x.Start, syscall.SIGKILL)
	}
}

// renameNoReplace renames from to to, failing when to exists.
func renameNoReplace(from, to string) error {
	return unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
}

// pristineDir reports whether d is a directory (not a link to one) with
// mode 0700, no special bits, owned by uid:gid (-1: the engine's) and
// without extended attributes.
func pristineDir(d string, uid, gid int) bool {
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o700 {
		return false
	}
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		return false
	}
	n, err := unix.Llistxattr(d, nil)
	return err == nil && n == 0
}

// plainFile reports whether f is a regular file (not a link) with one
// name.
func plainFile(f string) bool {
	var st unix.Stat_t
	return unix.Lstat(f, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1
}
