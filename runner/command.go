package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// RunCommand runs a rendered template with sh -c, bounded by timeout. The
// command gets its own process group so a timeout kills what it started
// (an ssh, a script's children), not just the shell.
func RunCommand(ctx context.Context, what, command string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		ce := &CommandError{What: what, Command: command, Output: tail(out), Err: err}
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			ce.Status, ce.Err = ee.ExitCode(), nil
		}
		if ctx.Err() != nil {
			ce.Err = fmt.Errorf("%w after %s", ctx.Err(), timeout)
		}
		return ce
	}
	return nil
}

// CommandError is a deploy or restart template that failed. Whatever
// status the template exited with, etcdpki's is 1 (an operation failed):
// a template's 2 would otherwise read as "bad input, nothing changed"
// after a run that may have changed files, and any other status as a
// code etcdpki does not document. The template's status is in the
// message instead. *exec.ExitError, which has an ExitCode method of its
// own, is deliberately not in the chain.
type CommandError struct {
	What, Command string
	// Status is the template's exit status (-1 when a signal ended it),
	// or 0 when it did not run to an exit (Err says why).
	Status int
	Err    error
	Output string
}

func (e *CommandError) Error() string {
	why := fmt.Sprintf("exited with status %d", e.Status)
	if e.Err != nil {
		why = e.Err.Error()
	} else if e.Status < 0 {
		why = "ended by a signal"
	}
	return fmt.Sprintf("%s: `%s`: %s%s", e.What, e.Command, why, e.Output)
}

// Unwrap returns why the command did not run to an exit (a timeout, a
// cancelled context), or nil.
func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is 1: a template's failure is a failed operation.
func (e *CommandError) ExitCode() int { return 1 }

func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, " | ")
}
