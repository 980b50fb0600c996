package testserver

import "syscall"

// sysProcAttr makes the kernel kill a server when the test binary dies
// (a test timeout, a crash), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
