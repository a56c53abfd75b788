package runner

import (
	"errors"
	"io"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// Config is what the runner needs from every operation alike: the
// cluster, whether to change anything, where progress goes, the clock
// and the timeouts. Each operation keeps its own flat Options and hands
// this share of them to the runner.
type Config struct {
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Out receives the timestamped progress lines.
	Out io.Writer
	// Reporter receives the progress as events; nil means
	// TextReporter(Out), which prints the lines Out has always had.
	Reporter Reporter
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// MemberTimeout bounds the wait for a restarted member; 0 means
	// DefaultMemberTimeout.
	MemberTimeout time.Duration
	// HandOffSettle is how long to leave a new leader alone before the
	// next member goes down; 0 means DefaultHandOffSettle, < 0 none.
	HandOffSettle time.Duration
	// CommandTimeout bounds one deploy or restart command; 0 means
	// DefaultCommandTimeout.
	CommandTimeout time.Duration
}

// Logger is the run's emitter of op's events, to c.Reporter.
func (c *Config) Logger(op string) *Logger { return NewReportLogger(c.Reporter, op) }

// Defaults fills in every zero field.
func (c *Config) Defaults() {
	if c.MemberTimeout <= 0 {
		c.MemberTimeout = DefaultMemberTimeout
	}
	if c.HandOffSettle == 0 {
		c.HandOffSettle = DefaultHandOffSettle
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Reporter == nil {
		c.Reporter = TextReporter(c.Out)
	}
}

// CheckInventory refuses an operation handed no inventory: the
// operations' one check that cmd expanded a spec.
func CheckInventory(op string, inv *pki.Inventory) error {
	if inv == nil || inv.Spec == nil {
		return &input.Error{Err: errors.New(op + ": no cluster spec")}
	}
	return nil
}
