package rotate

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// logger writes timestamped lines; it is also an io.Writer so that
// issue.Renew's lines get the same stamp.
type logger struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	buf   []byte
}

func newLogger(out io.Writer) *logger {
	return &logger{out: out, start: time.Now()}
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "%s %s\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
}

// Write stamps each complete line.
func (l *logger) Write(b []byte) (int, error) {
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
		l.printf("%s", line)
	}
	return len(b), nil
}
