package etcdtest

import (
	"os/exec"
	"runtime"
	"syscall"
)

// spawn requests run on one goroutine locked to its OS thread for the life
// of the test binary. Pdeathsig fires when the thread that forked the child
// exits, not the process; Go may retire an ordinary thread at any time
// (for example when a goroutine that locked it ends), which would kill a
// healthy member mid-test. A thread that never exits makes Pdeathsig mean
// "the test binary died", as intended.
var spawnReq = make(chan spawnCall)

type spawnCall struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread()
		for c := range spawnReq {
			c.done <- c.cmd.Start()
		}
	}()
}

// startProcess starts cmd in its own process group (so that a signal meant
// for the test binary's group, such as ^C, does not reach etcd before the
// harness can log it, and so the whole group can be killed) with SIGKILL as
// its parent-death signal: when the test binary dies, even by a -timeout
// panic that runs no cleanup, its etcd processes die with it.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c := spawnCall{cmd: cmd, done: make(chan error, 1)}
	spawnReq <- c
	return <-c.done
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
