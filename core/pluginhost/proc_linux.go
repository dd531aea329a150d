package pluginhost

import (
	"os/exec"
	"syscall"
)

// bindLifetime makes the kernel kill a plugin when the core dies, even by
// SIGKILL, so a crashed server leaves no plugin processes behind.
func bindLifetime(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
