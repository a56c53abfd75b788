package etcdtest

import (
	"os/exec"
	"syscall"
)

// StartProcess starts cmd as the members are started: in its own process
// group and, on Linux, with SIGKILL as its parent-death signal, so a test
// binary killed by -timeout takes the process with it. Other harnesses
// use it for the etcdpki processes they run beside the members.
func StartProcess(cmd *exec.Cmd) error { return startProcess(cmd) }

// SignalGroup sends sig to the process group led by pid (a process
// started by StartProcess and its children).
func SignalGroup(pid int, sig syscall.Signal) error { return signalGroup(pid, sig) }
