package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when this program dies, however it dies
// (a closed pipe, a kill), so that no simulator or crawler outlives a benchmark. Linux ties
// the signal to the thread that started the child; the Go runtime does not end its threads
// while the program runs, so in practice it is tied to the process.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
