//go:build !linux

package server

// hardenProcess does nothing where the kernel offers no such setting.
func hardenProcess() error { return nil }
