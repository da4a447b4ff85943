//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel offers no parent-death signal; the benchmark
// stops its children itself on a normal exit.
func dieWithParent(*exec.Cmd) {}
