package runner

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// logger writes timestamped lines; it is also an io.Writer so that
// issue.Renew's lines get the same stamp.
type Logger struct {
	mu    sync.Mutex
	out   io.Writer
	Start time.Time
	buf   []byte
}

func NewLogger(out io.Writer) *Logger {
	return &Logger{out: out, Start: time.Now()}
}

func (l *Logger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "%s %s\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
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
