// Package crashpoint stops or fails a run at one of its file-system
// steps, for the tests that prove a crash or a failure at any step leaves
// the PKI whole: every step atomicdir takes on disk passes its hook, and
// a test walks n = 1, 2, ... until a run finishes first.
package crashpoint

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// killed is what the hook panics with: the run stops at that step as if
// killed, with no cleanup, and RunUntilStep recovers it.
type killed struct{ step string }

// RunUntilStep runs f with every file-system step counted, and stops it
// like a kill -9 just before step n. It reports the step it stopped at
// ("" when f finished first, having made fewer than n steps); f failing
// without a crash fails the test.
func RunUntilStep(t testing.TB, n int, f func() error) (stopped string) {
	t.Helper()
	count := 0
	restore := atomicdir.SetHook(func(op, path string) error {
		count++
		if count == n {
			panic(killed{fmt.Sprintf("%d: %s %s", n, op, path)})
		}
		return nil
	})
	defer restore()
	defer func() {
		if r := recover(); r != nil {
			k, ok := r.(killed)
			if !ok {
				panic(r)
			}
			stopped = k.step
		}
	}()
	if err := f(); err != nil {
		t.Fatalf("run with no crash before step %d: %v", n, err)
	}
	return ""
}

// FailAtStep runs f with step n failing as the file system would; the
// error wraps fs.ErrInvalid. failed names the step ("" when f made fewer
// than n steps).
func FailAtStep(n int, f func() error) (failed string, err error) {
	count := 0
	restore := atomicdir.SetHook(func(op, path string) error {
		count++
		if count == n {
			failed = fmt.Sprintf("%d: %s %s", n, op, path)
			return fmt.Errorf("injected failure at step %s: %w", failed, fs.ErrInvalid)
		}
		return nil
	})
	defer restore()
	err = f()
	return failed, err
}
