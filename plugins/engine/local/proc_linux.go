package local

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procInfo is what /proc/PID/stat says about a process.
type procInfo struct {
	pid, ppid, pgid, sid int
	state                byte
	// start is the process's start time in clock ticks since boot: with
	// the pid it names one process, whatever reuses the pid later.
	start uint64
}

// readProc reads /proc/PID/stat. ok is false when the process is gone.
func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	return parseStat(pid, b)
}

// parseStat parses a /proc/PID/stat line. The command name (field 2) is in
// parentheses and may hold spaces or parentheses itself, so the fields are
// counted from the last ')'.
func parseStat(pid int, b []byte) (procInfo, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return procInfo{}, false
	}
	p := procInfo{pid: pid, state: f[0][0]}
	var err error
	ints := []*int{&p.ppid, &p.pgid, &p.sid}
	for k, dst := range ints {
		if *dst, err = strconv.Atoi(f[1+k]); err != nil {
			return procInfo{}, false
		}
	}
	if p.start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procInfo{}, false
	}
	return p, true
}

// procIdentity names one process across pid reuse.
type procIdentity struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// selfIdentity is this process's identity.
func selfIdentity() procIdentity {
	pid := os.Getpid()
	p, _ := readProc(pid)
	return procIdentity{PID: pid, Start: p.start}
}

// running reports whether the process still runs: same pid, same start
// time, and not a zombie waiting to be reaped.
func (id procIdentity) running() bool {
	if id.PID <= 0 {
		return false
	}
	p, ok := readProc(id.PID)
	return ok && p.start == id.Start && p.state != 'Z' && p.state != 'X'
}

func (id procIdentity) String() string { return fmt.Sprintf("%d@%d", id.PID, id.Start) }

// allProcs lists every process, skipping those that vanish meanwhile.
func allProcs() []procInfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]procInfo, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// killGroupMembers sends sig to every process of the process group pgid
// that started at or after start (so a group whose leader's pid was reused
// for someone else's group is left alone). It reports how many it found.
func killGroupMembers(pgid int, start uint64, sig syscall.Signal) int {
	n := 0
	for _, p := range allProcs() {
		if p.pgid == pgid && p.start >= start && p.state != 'Z' {
			_ = syscall.Kill(p.pid, sig)
			n++
		}
	}
	return n
}
