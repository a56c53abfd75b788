// Package input owns the program's one convention for bad input: an
// error that says the operator's command line, spec or files are wrong
// (as opposed to an operation that failed) has an ExitCode method
// returning ExitCode, 2. The CLI maps errors with one errors.As on Coder.
// Error is the plain carrier; cluster.Error, which also carries the
// spec's file, line and field, implements the same method.
package input

import "fmt"

// ExitCode is the documented exit code for bad input: nothing was
// changed.
const ExitCode = 2

// Coder is an error that picks its own exit code.
type Coder interface{ ExitCode() int }

// Error is bad input; its text is its cause's.
type Error struct{ Err error }

// Error returns the cause's text unchanged.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is 2.
func (e *Error) ExitCode() int { return ExitCode }

// Errorf formats a bad-input error, wrapping with %w as fmt.Errorf does.
func Errorf(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}
