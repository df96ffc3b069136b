//go:build !linux

package main

import "syscall"

// childAttrs: outside Linux there is no parent-death signal; children are
// still stopped by the bench on every normal exit.
func childAttrs() *syscall.SysProcAttr { return nil }

const clockTicks = 100
