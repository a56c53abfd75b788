package crashpoint

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// The scoped variants count only the steps on paths under one directory,
// so that crash tests on directories of their own can run at the same
// time (t.Parallel): atomicdir has one process-wide hook, and while any
// scoped run is active it is a dispatcher that hands each step to the
// run whose directory holds the path. Tests that call RunUntilStep or
// FailAtStep, or atomicdir.SetHook, replace the dispatcher while they
// run, so they must stay sequential (Go runs a package's sequential tests
// before its parallel ones, so the two never overlap).
var scoped struct {
	sync.Mutex
	runs    map[string]func(op, path string) error
	restore func()
}

// register makes h see the steps under dir until the returned func is
// called.
func register(dir string, h func(op, path string) error) (unregister func()) {
	dir = filepath.Clean(dir)
	scoped.Lock()
	defer scoped.Unlock()
	if _, dup := scoped.runs[dir]; dup {
		panic("crashpoint: two scoped runs on " + dir)
	}
	if len(scoped.runs) == 0 {
		scoped.runs = map[string]func(op, path string) error{}
		scoped.restore = atomicdir.SetHook(dispatch)
	}
	scoped.runs[dir] = h
	return func() {
		scoped.Lock()
		defer scoped.Unlock()
		delete(scoped.runs, dir)
		if len(scoped.runs) == 0 {
			scoped.restore()
		}
	}
}

// dispatch hands a step to the run whose directory holds path. Steps
// under no run's directory (a test setting up its tree, or running again
// after a crash, while another test's run is counted) pass untouched.
func dispatch(op, path string) error {
	scoped.Lock()
	var h func(op, path string) error
	for dir, f := range scoped.runs {
		if path == dir || strings.HasPrefix(path, dir+string(filepath.Separator)) {
			h = f
			break
		}
	}
	scoped.Unlock()
	if h == nil {
		return nil
	}
	return h(op, path)
}

// RunUntilStepIn is RunUntilStep counting only the steps on paths under
// dir (the run's PKI directory), for tests that run in parallel. A run
// that makes no step under dir at all fails the test: the hook would not
// be seeing its writes.
func RunUntilStepIn(t testing.TB, dir string, n int, f func() error) (stopped string) {
	t.Helper()
	count := 0
	defer register(dir, func(op, path string) error {
		count++
		if count == n {
			panic(killed{fmt.Sprintf("%d: %s %s", n, op, path)})
		}
		return nil
	})()
	defer func() {
		if r := recover(); r != nil {
			k, ok := r.(killed)
			if !ok {
				panic(r)
			}
			stopped = k.step
			checkSeen(t, dir, count)
		}
	}()
	if err := f(); err != nil {
		t.Fatalf("run with no crash before step %d: %v", n, err)
	}
	checkSeen(t, dir, count)
	return ""
}

// FailAtStepIn is FailAtStep counting only the steps on paths under dir,
// for tests that run in parallel.
func FailAtStepIn(t testing.TB, dir string, n int, f func() error) (failed string, err error) {
	t.Helper()
	count := 0
	unregister := register(dir, func(op, path string) error {
		count++
		if count == n {
			failed = fmt.Sprintf("%d: %s %s", n, op, path)
			return fmt.Errorf("injected failure at step %s: %w", failed, fs.ErrInvalid)
		}
		return nil
	})
	err = f()
	unregister()
	checkSeen(t, dir, count)
	return failed, err
}

func checkSeen(t testing.TB, dir string, count int) {
	t.Helper()
	if count == 0 {
		t.Fatalf("crashpoint: the run made no step under %s: the hook does not see its writes", dir)
	}
}
