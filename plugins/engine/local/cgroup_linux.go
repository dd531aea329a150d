package local

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cgroupHost is the cgroup v2 directory under which this engine process
// makes one cgroup per command: <cgroup2 mount>/<the engine's own
// cgroup>/palvella-engine-<pid>-<start>. Writing 1 to that directory's
// cgroup.kill kills every command of the engine at once.
type cgroupHost struct {
	instance string
	// hasKill is true when the kernel has cgroup.kill (5.14 and later);
	// without it a cgroup is frozen and its processes are killed one by
	// one.
	hasKill bool
	seq     atomic.Uint64
}

// cgroup2Dirs returns the directories where this process's own cgroup v2
// appears, one per cgroup2 mount that shows it, found through
// /proc/self/mountinfo and /proc/self/cgroup.
func cgroup2Dirs() ([]string, error) {
	own, err := ownCgroup2()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		root, mnt := unescapeMountinfo(fields[3]), unescapeMountinfo(fields[4])
		rel, ok := strings.CutPrefix(own, root)
		if root == "/" {
			rel, ok = own, true
		}
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			continue // this mount does not show our cgroup
		}
		dirs = append(dirs, filepath.Join(mnt, rel))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup2 file system is mounted")
	}
	return dirs, nil
}

// ownCgroup2 is this process's cgroup in the v2 hierarchy ("0::PATH").
func ownCgroup2() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			// A cgroup that was removed under us reads "/path (deleted)".
			return strings.TrimSuffix(p, " (deleted)"), nil
		}
	}
	return "", errors.New("this process has no cgroup v2 (no 0:: line in /proc/self/cgroup)")
}

// unescapeMountinfo undoes the octal escapes (\040 for a space...) of a
// mountinfo field.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// newCgroupHost creates this engine's cgroup directory in the first cgroup2
// mount where it can, and checks that a process can be started straight
// into a cgroup below it (clone3 with CLONE_INTO_CGROUP).
func newCgroupHost(self procIdentity) (*cgroupHost, error) {
	dirs, err := cgroup2Dirs()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, d := range dirs {
		inst := filepath.Join(d, fmt.Sprintf("palvella-engine-%d-%d", self.PID, self.Start))
		if err := os.Mkdir(inst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			errs = append(errs, fmt.Errorf("create cgroup %s: %w", inst, err))
			continue
		}
		h := &cgroupHost{instance: inst}
		if _, err := os.Stat(filepath.Join(inst, "cgroup.kill")); err == nil {
			h.hasKill = true
		}
		if err := h.probe(); err != nil {
			_ = os.Remove(inst)
			errs = append(errs, err)
			continue
		}
		sweepCgroups(d, h.hasKill)
		return h, nil
	}
	return nil, errors.Join(errs...)
}

// probe starts a trivial process into a fresh cgroup and removes it.
func (h *cgroupHost) probe() error {
	cg, err := h.newCgroup()
	if err != nil {
		return err
	}
	defer cg.close()
	cmd := exec.Command("/proc/self/exe", helperProbe)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.fd.Fd())}
	// Started is the proof: the process was cloned into the cgroup and
	// executed. It is killed at once rather than waited for, because this
	// binary runs every package's initialisation before the helper exits,
	// which held up the engine's start by as long as its own (the palvella
	// binary: 20 ms and more).
	if err := cmd.Start(); err != nil {
		_ = cg.remove(time.Second)
		return fmt.Errorf("start a process in cgroup %s: %w", cg.dir, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait() // killed: the status says nothing more
	if err := cg.remove(2 * time.Second); err != nil {
		return err
	}
	return nil
}

// cgroup is one command's cgroup.
type cgroup struct {
	dir     string
	fd      *os.File
	hasKill bool
}

// newCgroup creates the cgroup of one command.
func (h *cgroupHost) newCgroup() (*cgroup, error) {
	dir := filepath.Join(h.instance, fmt.Sprintf("exec-%d", h.seq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return &cgroup{dir: dir, fd: fd, hasKill: h.hasKill}, nil
}

func (c *cgroup) close() {
	if c.fd != nil {
		c.fd.Close()
		c.fd = nil
	}
}

// cgroupPIDs lists the processes of a cgroup and of every cgroup below it.
func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// cgroupPopulated reports whether any process is left in the cgroup or
// below it. A cgroup that no longer exists is empty.
func cgroupPopulated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return len(cgroupPIDs(dir)) > 0
}

// signalCgroup sends sig to every process of the cgroup.
func signalCgroup(dir string, sig syscall.Signal) {
	for _, pid := range cgroupPIDs(dir) {
		_ = syscall.Kill(pid, sig)
	}
}

// killCgroup kills every process of the cgroup and below: through
// cgroup.kill when the kernel has it, otherwise by freezing the cgroup (so
// nothing forks meanwhile) and sending SIGKILL to each process, until it
// is empty or the deadline passes.
func killCgroup(dir string, hasKill bool, deadline time.Time) {
	if hasKill {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
			return
		}
	}
	freeze := filepath.Join(dir, "cgroup.freeze")
	frozen := os.WriteFile(freeze, []byte("1"), 0) == nil
	for cgroupPopulated(dir) && time.Now().Before(deadline) {
		signalCgroup(dir, syscall.SIGKILL) // fatal signals reach frozen tasks
		time.Sleep(10 * time.Millisecond)
	}
	if frozen {
		_ = os.WriteFile(freeze, []byte("0"), 0)
	}
}

// removeCgroup waits until the cgroup is empty and removes it with the
// cgroups below it. A cgroup already gone is no error.
func removeCgroup(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for cgroupPopulated(dir) {
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds processes %v after %s", dir, cgroupPIDs(dir), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	// Deepest first.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (c *cgroup) signal(sig syscall.Signal) { signalCgroup(c.dir, sig) }
func (c *cgroup) populated() bool           { return cgroupPopulated(c.dir) }
func (c *cgroup) kill() {
	killCgroup(c.dir, c.hasKill, time.Now().Add(5*time.Second))
}
func (c *cgroup) remove(timeout time.Duration) error {
	c.close()
	return removeCgroup(c.dir, timeout)
}

// sweepCgroups kills and removes the cgroup directories that engines which
// no longer run left in dir (their supervisor was killed too, or the
// machine went down with them).
func sweepCgroups(dir string, hasKill bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "palvella-engine-")
		if !ok || !e.IsDir() {
			continue
		}
		pid, start, ok := strings.Cut(rest, "-")
		var id procIdentity
		var err1, err2 error
		id.PID, err1 = strconv.Atoi(pid)
		id.Start, err2 = strconv.ParseUint(start, 10, 64)
		if !ok || err1 != nil || err2 != nil || id.running() {
			continue
		}
		old := filepath.Join(dir, e.Name())
		killCgroup(old, hasKill, time.Now().Add(5*time.Second))
		_ = removeCgroup(old, 5*time.Second)
	}
}
