package cluster

import (
	"fmt"
	"strings"

	"github.com/etcdpki/etcdpki/internal/input"
)

// Error is a spec problem, located at a file, line and field where known.
// Callers treat it as bad input (exit code 2).
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// ExitCode is input.ExitCode: a spec problem is bad input.
func (e *Error) ExitCode() int { return input.ExitCode }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("spec")
	if e.File != "" {
		b.WriteString(" " + e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
	} else if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}
