// Package recorder is the tests' runner.Reporter: it keeps every event an
// operation reports, so a test can assert on the structured fields, and
// passes each on to Next (a TextReporter, when the test also checks the
// printed lines).
package recorder

import (
	"sync"

	"github.com/etcdpki/etcdpki/runner"
)

// Recorder records every event; operations report from their own
// goroutines, hence the lock.
type Recorder struct {
	// Next, when set, receives every event after it is recorded.
	Next runner.Reporter

	mu     sync.Mutex
	events []runner.Event
}

// Report records e and passes it on to Next.
func (r *Recorder) Report(e runner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if r.Next != nil {
		r.Next.Report(e)
	}
}

// Events is a copy of what was reported so far, in order.
func (r *Recorder) Events() []runner.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]runner.Event(nil), r.events...)
}
