// Command etcdpki bootstraps, rotates and verifies the PKI of an external
// etcd cluster behind Kubernetes.
//
// Exit codes: 0 success, 1 a check or operation failed, 2 usage or input
// error (nothing was changed): any error with an ExitCode method picks its
// own (package internal/input's convention), every other error is 1.
//
// It owns the command line only: flags into plain option structs, one
// call into rotate, verify or issue, errors mapped to exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/etcdpki/etcdpki/internal/earlysignal"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/urfave/cli/v2"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	go stopOnSignal(earlysignal.C, cancel, os.Stderr, os.Exit)
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// signalGrace bounds how long a command may take to end after SIGTERM or
// ^C. Code that watches its context ends in milliseconds (measured: verify
// against a silent endpoint and rotate --watch both exit within 20 ms);
// the grace only catches a step blocked where no context reaches, such as
// opening a FIFO named as a key file, which would otherwise swallow
// every SIGTERM and never end.
const signalGrace = 5 * time.Second

// stepsFinish is set by commands whose steps deliberately run to their
// end after a signal: rotate finishes a member's restart or a deploy
// (each bounded by --member-timeout or --command-timeout) rather than
// leave a member half restarted. The grace does not cut those short; a
// second signal still does.
var stepsFinish atomic.Bool

// stopOnSignal cancels the command's context at the first signal, so it
// finishes its step and exits; a second signal, or the grace running out,
// ends the process at once. Every write etcdpki makes is atomic, so an
// exit at any point leaves the old or the new files.
func stopOnSignal(sigs <-chan os.Signal, cancel context.CancelCauseFunc, stderr io.Writer, exit func(int)) {
	sig := <-sigs
	cancel(fmt.Errorf("%v signal received", sig))
	grace := time.After(signalGrace)
	for {
		select {
		case again := <-sigs:
			fmt.Fprintf(stderr, "etcdpki: %v signal received again: exiting now\n", again)
		case <-grace:
			if stepsFinish.Load() {
				grace = nil // wait for the step, or a second signal
				continue
			}
			fmt.Fprintf(stderr, "etcdpki: still running %s after the %v signal: exiting now\n", signalGrace, sig)
		}
		exit(exitFail)
		return
	}
}

// Exit codes are part of the contract; scripts and cron rely on them.
const (
	exitOK   = 0
	exitFail = 1
)

// exitCode maps an error to the documented exit codes: an error that
// picks its own (bad input is input.ExitCode, 2; see package input) or 1.
// A child process's status (an *exec.ExitError, whose ExitCode method is
// not this convention) and any code outside the documented ones are 1:
// scripts and cron read the code, and only 0, 1 and 2 mean something to
// them.
func exitCode(err error) int {
	var ec input.Coder
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		if _, child := ec.(*exec.ExitError); child {
			return exitFail
		}
		if c := ec.ExitCode(); c == exitFail || c == input.ExitCode {
			return c
		}
	}
	return exitFail
}

const exitHelp = `EXIT CODES:
   0  success (or nothing to do)
   1  a check or an operation failed
   2  usage or input error; nothing was changed`

// appHelpTemplate is urfave's default with the exit codes appended, built
// once.
var appHelpTemplate = cli.AppHelpTemplate + "\n" + exitHelp + "\n"

func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append(commands(), completionCommand())
	markUsageErrors(cmds)
	checkedActions(cmds)
	return &cli.App{
		Name: "etcdpki",
		// The app's own template, so that each run (tests run many in one
		// process) prints the exit codes once; urfave's global stays as is.
		CustomAppHelpTemplate: appHelpTemplate,
		Usage:                 "PKI for an external etcd cluster behind Kubernetes",
		// urfave's own --version (and -v) prints "etcdpki version " and
		// this through its default printer; no global is touched.
		Version: buildVersion(),
		Description: "init bootstraps the etcd CA, node and client certificates and the configs that use them;\n" +
			"rotate renews what is due and rolls the members; verify proves the apiserver's TLS material works.",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// urfave's completion protocol: --generate-bash-completion as the
		// last argument prints the candidates (see completion.go).
		EnableBashCompletion: true,
		// --node NAME=IP,DNS carries commas; don't split flag values on them.
		DisableSliceFlagSeparator: true,
		Commands:                  cmds,
		// Errors are printed once, by run, with the exit code it chooses.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		// Without an action, urfave/cli answers an unknown command with
		// its help command's exit code 3.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return input.Errorf("unknown command %q (see etcdpki --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
}

// onUsageError turns urfave/cli's flag parsing errors into usage errors
// (exit 2).
func onUsageError(_ *cli.Context, err error, _ bool) error { return &input.Error{Err: err} }

// markUsageErrors installs onUsageError on every command and subcommand:
// urfave/cli consults only the command's own hook, not the app's.
func markUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		markUsageErrors(c.Subcommands)
	}
}

// run is main without the process: testable with injected writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "etcdpki: %s\n", oneLine(err.Error()))
	return exitCode(err)
}

// oneLine joins a multi-line error (yaml.v3's "unmarshal errors:" list,
// a command's output) into the one line every error is printed as,
// rather than keeping a first line that may say nothing ("yaml:
// unmarshal errors:").
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// noArgs rejects positional arguments; urfave/cli stops parsing flags at
// the first one, so a flag after it would be silently ignored.
func noArgs(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return input.Errorf("%s: unexpected argument %q (flags go before arguments)", c.Command.FullName(), c.Args().First())
	}
	return nil
}

// checkArgs rejects positional arguments that look like flags.
func checkArgs(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return input.Errorf("%s: flag %s must come before the arguments", c.Command.FullName(), a)
		}
	}
	return nil
}
