package runner

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Logger is an operation's emitter of progress events: Printf reports a
// line with no structured fields, Report a full Event. It is also an
// io.Writer, so that issue.Renew's lines become events (stamped lines)
// too.
type Logger struct {
	mu    sync.Mutex
	rep   Reporter
	op    string
	Start time.Time
	buf   []byte
}

// NewLogger writes stamped lines to out (TextReporter).
func NewLogger(out io.Writer) *Logger { return NewReportLogger(TextReporter(out), "") }

// NewReportLogger reports the events of operation op to rep.
func NewReportLogger(rep Reporter, op string) *Logger {
	return &Logger{rep: rep, op: op, Start: time.Now()}
}

// Printf reports one line.
func (l *Logger) Printf(format string, args ...any) {
	l.Report(Event{Message: fmt.Sprintf(format, args...)})
}

// Report reports e, stamped now and with the Logger's operation unless
// e says otherwise. The stamp is taken under the lock, so lines are
// reported in stamp order.
func (l *Logger) Report(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Op == "" {
		e.Op = l.op
	}
	l.rep.Report(e)
}

// Write stamps each complete line.
func (l *Logger) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, b...)
	var lines []string
	for {
		i := slices.Index(l.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	l.mu.Unlock()
	for _, line := range lines {
		l.Printf("%s", line)
	}
	return len(b), nil
}
