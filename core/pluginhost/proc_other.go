//go:build !linux

package pluginhost

import "os/exec"

// bindLifetime does nothing where the kernel offers no parent-death signal;
// plugins are still killed on an orderly shutdown.
func bindLifetime(*exec.Cmd) {}
