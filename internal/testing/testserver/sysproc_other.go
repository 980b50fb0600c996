//go:build !linux

package testserver

import "syscall"

// sysProcAttr has nothing to add outside Linux: there is no parent-death
// signal, and servers rely on the test's cleanup alone.
func sysProcAttr() *syscall.SysProcAttr { return nil }
