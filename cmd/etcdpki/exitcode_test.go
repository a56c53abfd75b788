package main

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/etcdpki/etcdpki/internal/input"
)

// TestExitCodeIsOnlyADocumentedOne wraps errors that carry an ExitCode of
// their own, as a library or os/exec returns them: only 1 and 2 pass
// through; anything else is 1.
func TestExitCodeIsOnlyADocumentedOne(t *testing.T) {
	for _, status := range []int{2, 3, 5, 7, 143} {
		err := exec.Command("/bin/sh", "-c", fmt.Sprintf("exit %d", status)).Run()
		if err == nil {
			t.Fatal("sh exited 0")
		}
		if got := exitCode(fmt.Errorf("restart: %w", err)); got != exitFail {
			t.Errorf("a command's exit status %d made etcdpki exit %d, want %d", status, got, exitFail)
		}
	}
	if got := exitCode(fmt.Errorf("spec: %w", input.Errorf("bad"))); got != input.ExitCode {
		t.Errorf("bad input exits %d, want %d", got, input.ExitCode)
	}
}
