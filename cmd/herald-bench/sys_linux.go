package main

import (
	"syscall"
)

// childAttrs makes a child process (worker or server) die with the bench:
// even a bench killed with SIGKILL leaves nothing running.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU
// times; it is 100 on every Linux architecture Go supports.
const clockTicks = 100
