//go:build !linux

package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Outside Linux the engine has no cgroups, no Landlock and no
// supervisor: each command runs in its own process group as the engine's
// user, as docs/security.md says.

type commandSandbox struct{}

func sandboxFor(deny []string, root, ws string) commandSandbox { return commandSandbox{} }

type procIdentity struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func (id procIdentity) running() bool { return id.PID > 0 && syscall.Kill(id.PID, 0) == nil }

type engineHost struct {
	mu    sync.Mutex
	self  procIdentity
	rmu   sync.Mutex
	roots map[string]bool
}

var host = &engineHost{self: procIdentity{PID: os.Getpid()}, roots: map[string]bool{}}

func (h *engineHost) useRoot(root string) error {
	h.mu.Lock()
	seen := h.roots[root]
	h.roots[root] = true
	h.mu.Unlock()
	if seen {
		return nil
	}
	return sweepRoot(root, procIdentity{})
}

type container interface {
	started(pid int)
	record() execRecord
	signal(sig syscall.Signal)
	alive() bool
	kill()
	release() error
}

type pgContainer struct{ pgid int }

func newContainer(cmd *exec.Cmd, _ bool) (container, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &pgContainer{}, nil
}

func (c *pgContainer) started(pid int)           { c.pgid = pid }
func (c *pgContainer) record() execRecord        { return execRecord{PGID: c.pgid} }
func (c *pgContainer) signal(sig syscall.Signal) { _ = syscall.Kill(-c.pgid, sig) }
func (c *pgContainer) alive() bool               { return syscall.Kill(-c.pgid, 0) == nil }
func (c *pgContainer) kill()                     { _ = syscall.Kill(-c.pgid, syscall.SIGKILL) }
func (c *pgContainer) release() error            { return nil }

func engineCgroup() string { return "" }

func killEngineCgroup(string) {}

func killRecorded(x execRecord) {
	if x.PGID > 0 {
		_ = syscall.Kill(-x.PGID, syscall.SIGKILL)
	}
}

func resolve(cfg config) (config, []sdk.Diagnostic) {
	var diags []sdk.Diagnostic
	bad := func(field, summary string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary,
			Detail: "only the Linux build of the local engine has it"})
	}
	cfg.jobUID, cfg.jobGID, cfg.landlock, cfg.cgroup = -1, -1, false, false
	if cfg.user != "" {
		bad("user", fmt.Sprintf("cannot run commands as %q", cfg.user))
	}
	if cfg.sandbox == "landlock" {
		bad("sandbox", "Landlock is not available")
	}
	if cfg.containment == "cgroup" {
		bad("containment", "cgroups are not available")
	}
	return cfg, diags
}

func prepareRoot(cfg config) error { return os.MkdirAll(cfg.root, 0o700) }

func startSandboxed(cmd *exec.Cmd, s commandSandbox) (func(), error) {
	return nil, fmt.Errorf("the filesystem sandbox needs Linux's Landlock")
}

// renameNoReplace: kept workspaces are a Linux optimisation only.
func renameNoReplace(from, to string) error { return errors.ErrUnsupported }

func pristineDir(string, int, int) bool { return false }

func plainFile(string) bool { return false }
