//go:build unix && !linux

package etcdtest

import (
	"os/exec"
	"syscall"
)

// startProcess starts cmd in its own process group. Outside Linux there is
// no parent-death signal: the harness's cleanup stops members, but a test
// binary killed outright can leave them running.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
