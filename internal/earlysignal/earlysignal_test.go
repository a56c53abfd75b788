package earlysignal

import (
	"os"
	"syscall"
	"testing"
)

// TestSIGTERMIsCaughtFromInit sends SIGTERM to the test process without
// any Notify of its own: only the package's init can have asked for it,
// and without that the process would die with status 143.
func TestSIGTERMIsCaughtFromInit(t *testing.T) {
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if sig := <-C; sig != syscall.SIGTERM {
		t.Fatalf("got %v, want SIGTERM", sig)
	}
}
