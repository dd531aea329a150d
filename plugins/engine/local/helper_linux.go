package local

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The engine runs small helpers by re-executing its own binary
// (/proc/self/exe) with one of these as the first argument. The plugin's
// package init handles them before anything else runs, so this works
// whether the binary is palvella (where plugins are compiled in), a
// standalone build of this plugin, or this package's test binary.
const (
	// helperLaunch starts one command: it reads a launchSpec from fd 3,
	// drops to the job's user, sandboxes itself with Landlock and execs
	// the command in its place (same pid).
	helperLaunch = "__palvella_engine_local_launch"
	// helperSupervise outlives the engine: when its stdin reaches EOF (the
	// engine exited, however it died) it kills what the engine left and
	// removes its workspaces.
	helperSupervise = "__palvella_engine_local_supervise"
	// helperProbe exits 0 at once: used to check that a process can be
	// started into a cgroup.
	helperProbe = "__palvella_engine_local_probe"
)

func init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case helperLaunch:
		os.Exit(launchMain())
	case helperSupervise:
		os.Exit(superviseMain(os.Stdin))
	case helperProbe:
		os.Exit(0)
	}
}

// launchSpec is what the launcher needs to start one command. It travels
// through a pipe, not argv or the environment: the job's environment holds
// its credentials, and the launcher's own environment must not be the
// job's (LD_PRELOAD and the like would run in it before it drops its
// privileges).
type launchSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// UID and GID to switch to; -1 keeps the engine's.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Parent is the engine's pid: the launcher dies with it.
	Parent int `json:"parent"`
	// Sandbox, when set, is applied with Landlock before the exec.
	Sandbox *sandboxSpec `json:"sandbox,omitempty"`
}

// launchMain is the launcher: it runs in the child between fork and the
// command's exec, as the engine's user.
func launchMain() int {
	// Credentials, no_new_privs, the parent-death signal and the Landlock
	// domain are properties of the calling OS thread; the exec below
	// must come from the same thread to carry them into the command.
	runtime.LockOSThread()
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{Name}, args...)...)
		return code
	}
	f := os.NewFile(3, "launch-spec")
	if f == nil {
		return fail(126, "launcher started without its specification")
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fail(126, "read the launch specification: %v", err)
	}
	var spec launchSpec
	if err := json.Unmarshal(b, &spec); err != nil || spec.Path == "" || len(spec.Args) == 0 {
		return fail(126, "bad launch specification: %v", err)
	}
	rulesetFD := -1
	if spec.Sandbox != nil {
		if rulesetFD, err = buildRuleset(spec.Sandbox); err != nil {
			return fail(126, "build the filesystem sandbox: %v", err)
		}
	}
	if spec.UID >= 0 {
		// Raw system calls: on this thread only, on purpose (see above).
		var groups [1]uint32
		groups[0] = uint32(spec.GID)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
			return fail(126, "set the groups of the job's user: %v", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(spec.GID), uintptr(spec.GID), uintptr(spec.GID)); e != 0 {
			return fail(126, "switch to group %d: %v", spec.GID, e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(spec.UID), uintptr(spec.UID), uintptr(spec.UID)); e != 0 {
			return fail(126, "switch to user %d: %v", spec.UID, e)
		}
	}
	// Changing credentials clears the parent-death signal: set it again,
	// then make sure the engine did not die in between.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fail(126, "set the parent-death signal: %v", err)
	}
	if spec.Parent > 0 && os.Getppid() != spec.Parent {
		return fail(126, "the engine exited before the command started")
	}
	if rulesetFD >= 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail(126, "set no_new_privs: %v", err)
		}
		if _, _, e := syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rulesetFD), 0, 0); e != 0 {
			return fail(126, "enforce the filesystem sandbox: %v", e)
		}
		syscall.Close(rulesetFD)
	}
	err = syscall.Exec(spec.Path, spec.Args, spec.Env)
	code := 126
	if errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	return fail(code, "%s: %v", spec.Args[0], err)
}

// superviseMain runs until in reaches EOF, which happens when the engine
// process is gone (the kernel closes its end of the pipe however it died),
// then kills every command the engine left running and removes the
// workspaces it owned. The engine writes, one per line:
//
//	owner PID START     the engine's identity
//	cgroup DIR          the engine's cgroup directory (every command's cgroup is below it)
//	root DIR            a workspace root the engine uses
func superviseMain(in io.Reader) int {
	var (
		owner  procIdentity
		cgDir  string
		roots  []string
		seenAt = map[string]bool{}
	)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		kind, arg, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "owner":
			pid, start, _ := strings.Cut(arg, " ")
			owner.PID, _ = strconv.Atoi(pid)
			owner.Start, _ = strconv.ParseUint(start, 10, 64)
		case "cgroup":
			cgDir = arg
		case "root":
			if !seenAt[arg] {
				seenAt[arg] = true
				roots = append(roots, arg)
			}
		}
	}
	// The engine is exiting or gone. Kill everything under its cgroup
	// first: one write stops every command and whatever they spawned.
	if cgDir != "" {
		killCgroup(cgDir, fileExists(cgDir+"/cgroup.kill"), time.Now().Add(5*time.Second))
	}
	for _, root := range roots {
		if err := sweepRoot(root, owner); err != nil {
			fmt.Fprintf(os.Stderr, "%s supervisor: %v\n", Name, err)
		}
		// A root the engine chose in the temporary directory goes when
		// empty (another engine may still use it: then it is not empty).
		if strings.HasPrefix(filepath.Base(root), tmpRootPrefix) && filepath.Dir(root) == filepath.Clean(os.TempDir()) {
			_ = os.Remove(root)
		}
	}
	if cgDir != "" {
		if err := removeCgroup(cgDir, 5*time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "%s supervisor: %v\n", Name, err)
		}
	}
	return 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
