package runner

import (
	"fmt"
	"time"
)

// Line is an Event being built: Logger.Step starts it, its setters add
// the structured fields, and Done, Warn, Skipped, Failed, DryRun or Info
// report it with its Message (the CLI's line, unchanged).
type Line struct {
	l *Logger
	e Event
}

// Step starts an event about step and target ("" for none).
func (l *Logger) Step(step, target string) Line {
	return Line{l: l, e: Event{Step: step, Target: target}}
}

// Serial sets the serial the line states.
func (b Line) Serial(s string) Line { b.e.Serial = s; return b }

// Took sets the duration the line states.
func (b Line) Took(d time.Duration) Line { b.e.Duration = d; return b }

// Count sets a "[i/n]" line's progress count.
func (b Line) Count(i, n int) Line { b.e.Index, b.e.Total = i, n; return b }

// Err sets the error the line reports.
func (b Line) Err(err error) Line { b.e.Err = err; return b }

// Done reports the line with OutcomeDone.
func (b Line) Done(format string, args ...any) { b.report(OutcomeDone, format, args) }

// Warn reports the line with OutcomeWarning.
func (b Line) Warn(format string, args ...any) { b.report(OutcomeWarning, format, args) }

// Skipped reports the line with OutcomeSkipped (nothing to do).
func (b Line) Skipped(format string, args ...any) { b.report(OutcomeSkipped, format, args) }

// Failed reports the line with OutcomeFailed.
func (b Line) Failed(format string, args ...any) { b.report(OutcomeFailed, format, args) }

// DryRun reports the line with OutcomeDryRun.
func (b Line) DryRun(format string, args ...any) { b.report(OutcomeDryRun, format, args) }

// Info reports the line with no outcome (a notice: what is about to
// happen, or where a resumed run goes on).
func (b Line) Info(format string, args ...any) { b.report("", format, args) }

func (b Line) report(o Outcome, format string, args []any) {
	b.e.Outcome = o
	b.e.Message = fmt.Sprintf(format, args...)
	b.l.Report(b.e)
}

// ReportRenewed reports issue.Renew's line for one renewed certificate
// (issue.Options.Out is a Logger): a StepRenew event with its ID and
// new serial.
func (l *Logger) ReportRenewed(id, serial, line string) {
	l.Report(Event{Step: StepRenew, Target: id, Serial: serial, Outcome: OutcomeDone, Message: line})
}

// As reports the line with outcome o (one the caller picked, such as
// OutcomeDryRun or OutcomeDone by the run's mode).
func (b Line) As(o Outcome, format string, args ...any) { b.report(o, format, args) }
