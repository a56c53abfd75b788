package selfhost

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// MaxErrors is how many failures a load keeps with their errors; the
// count goes on past it.
const MaxErrors = 20

// Failure is one request that returned an error to its caller (or, for a
// read, returned something other than what was last written).
type Failure struct {
	At   time.Time
	Op   string
	Took time.Duration
	Err  error
}

func (f Failure) String() string {
	return fmt.Sprintf("%s at %s after %s: %v", f.Op, f.At.Format("15:04:05.000"), f.Took.Round(time.Millisecond), f.Err)
}

// Stats is what a load did, counted request by request.
type Stats struct {
	// Load names the load: "etcd" or "apiserver".
	Load string
	// Requests is every request made, Failed those that failed; ByOp
	// counts the requests by operation (put, get, create, update, watch).
	Requests, Failed int64
	ByOp             map[string]int64
	// FailedByOp counts the failures by operation.
	FailedByOp map[string]int64
	// Events is how many watch events arrived (the apiserver load).
	Events int64
	// Errors are the first MaxErrors failures.
	Errors []Failure
	// When is every failure's start and duration (no error kept past
	// MaxErrors): what a test checks against the restart windows.
	When []Failure
	// LastSuccess is when a request last succeeded.
	LastSuccess time.Time
	Took        time.Duration
}

func (s Stats) String() string {
	var ops []string
	for _, op := range slices.Sorted(maps.Keys(s.ByOp)) {
		ops = append(ops, fmt.Sprintf("%s %d", op, s.ByOp[op]))
	}
	events := ""
	if s.Events > 0 {
		events = fmt.Sprintf(", %d watch events", s.Events)
	}
	return fmt.Sprintf("%s load: %d requests (%s)%s in %s, %d failed", s.Load, s.Requests, strings.Join(ops, ", "), events, s.Took.Round(time.Millisecond), s.Failed)
}

// CheckClean fails t unless the load ran (made requests) and none
// failed; it names the first failures.
func (s Stats) CheckClean(t testing.TB) {
	t.Helper()
	t.Log(s)
	if s.Requests == 0 {
		t.Errorf("%s load made no request: it proves nothing", s.Load)
	}
	if s.Failed == 0 {
		return
	}
	var lines []string
	for _, f := range s.Errors {
		lines = append(lines, "  "+f.String())
	}
	t.Errorf("%s load: %d of %d requests failed; the first:\n%s", s.Load, s.Failed, s.Requests, strings.Join(lines, "\n"))
}

// counter records every request of a load; safe for concurrent use.
type counter struct {
	name  string
	start time.Time

	mu               sync.Mutex
	requests, failed int64
	events           int64
	byOp, failedByOp map[string]int64
	errs             []Failure
	when             []Failure
	lastOK           time.Time
}

func newCounter(name string) *counter {
	return &counter{name: name, start: time.Now(), byOp: map[string]int64{}, failedByOp: map[string]int64{}}
}

// record counts one request of op that started at t0 and ended with err.
func (c *counter) record(op string, t0 time.Time, err error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	c.byOp[op]++
	if err == nil {
		c.lastOK = now
		return
	}
	c.fail(Failure{At: t0, Op: op, Took: now.Sub(t0), Err: err})
}

// fail counts a failure that is no request of its own (a watch that
// broke, an event never delivered).
func (c *counter) failure(f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail(f)
}

func (c *counter) fail(f Failure) {
	c.failed++
	c.failedByOp[f.Op]++
	if len(c.errs) < MaxErrors {
		c.errs = append(c.errs, f)
	}
	c.when = append(c.when, Failure{At: f.At, Op: f.Op, Took: f.Took})
}

func (c *counter) event() {
	c.mu.Lock()
	c.events++
	c.mu.Unlock()
}

func (c *counter) stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Load: c.name, Requests: c.requests, Failed: c.failed, ByOp: maps.Clone(c.byOp), FailedByOp: maps.Clone(c.failedByOp), Events: c.events,
		Errors: slices.Clone(c.errs), When: slices.Clone(c.when), LastSuccess: c.lastOK, Took: time.Since(c.start)}
}
