package server

import "golang.org/x/sys/unix"

// hardenProcess keeps the server's memory and environment out of reach of
// other processes of the same user (a job on an engine that runs commands
// as the server's user): a process that is not dumpable has its
// /proc/PID files (environ, mem, maps, fd) owned by root, and cannot be
// traced.
func hardenProcess() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
