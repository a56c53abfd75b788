package runner

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Outcome is how the step an Event reports ended, for a consumer that is
// not a person (a controller turning events into Kubernetes Events and
// status); "" for a line that reports no outcome.
type Outcome string

// Outcomes.
const (
	OutcomeDone    Outcome = "done"
	OutcomeWarning Outcome = "warning"
	OutcomeSkipped Outcome = "skipped"
	OutcomeFailed  Outcome = "failed"
	OutcomeDryRun  Outcome = "dry-run"
)

// StepPlan is the Step of a dry run's plan: its Message is the whole
// plan text, written as is (no stamp), as the CLI prints it.
const StepPlan = "plan"

// Event is one progress report of an operation. Message is exactly the
// line the CLI prints after its stamp; the other fields say the same in
// a form a program can use without parsing it.
type Event struct {
	// Time is the wall clock when the line was reported (not
	// Config.Now, which tests move).
	Time time.Time
	// Op is the operation: "rotate", "watch", "recover", "ca rotate",
	// "member add", "member remove", "revoke"; "" when not known.
	Op string
	// Step is the step the line is about: plan, crl, renew, prove,
	// publish, deploy, refused, restart, hand-off, ...; "" for none.
	Step string
	// Target is the member, client, certificate ID or serial concerned.
	Target string
	// Index and Total are a "[i/n]" progress count; 0 for none.
	Index, Total int
	// Serial is the serial now served or in effect.
	Serial   string
	Outcome  Outcome
	Duration time.Duration
	Message  string
	Err      error
}

// Reporter receives an operation's events. It is called from the
// operation's goroutines, one event at a time per Logger.
type Reporter interface{ Report(Event) }

// stampFormat is the progress lines' stamp.
const stampFormat = "2006-01-02T15:04:05.000Z07:00"

type textReporter struct {
	mu sync.Mutex
	w  io.Writer
}

// TextReporter writes each event as the CLI prints it: the stamp, a
// space, the Message and a newline; a plan event's Message as is.
func TextReporter(w io.Writer) Reporter { return &textReporter{w: w} }

func (t *textReporter) Report(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Step == StepPlan {
		io.WriteString(t.w, e.Message)
		return
	}
	fmt.Fprintf(t.w, "%s %s\n", e.Time.Format(stampFormat), e.Message)
}
