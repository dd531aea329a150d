package local

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The engine runs small helpers by re-executing its own binary
// (/proc/self/exe) with one of these as the first argument. The plugin's
// package init handles them before anything else runs, so this works
// whether the binary is palvella (where plugins are compiled in), a
// standalone build of this plugin, or this package's test binary.
const (
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
	case helperSupervise:
		os.Exit(superviseMain(os.Stdin))
	case helperProbe:
		os.Exit(0)
	}
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
		if strings.HasPrefix(filepath.Base(root), tmpRootPrefix) && filepath.Dir(root) == fallbackParent() {
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
