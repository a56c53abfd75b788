package selfhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// The etcdpki binary is built once per test binary, into a directory
// Main removes when the tests are done.
var (
	buildMu  sync.Mutex
	buildDir string
	built    string
	buildErr error
)

// Main runs the package's tests (call it from TestMain) and then removes
// the etcdpki binary that Binary built.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdpki-selfhost-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "selfhost:", err)
		os.Exit(1)
	}
	buildMu.Lock()
	buildDir = dir
	buildMu.Unlock()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Binary is the etcdpki binary built from this checkout (`go build
// ./cmd/etcdpki`), once per test binary. The test binary's TestMain must
// call Main, which owns the directory it is built into.
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		t.Fatal("selfhost: Binary needs the package's TestMain to call selfhost.Main(m)")
	}
	if built == "" && buildErr == nil {
		bin := filepath.Join(buildDir, "etcdpki")
		root, err := etcdtest.ModuleRoot()
		if err == nil {
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/etcdpki")
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build ./cmd/etcdpki: %w\n%s", err, out)
			}
		} else {
			buildErr = err
		}
		if buildErr == nil {
			built = bin
		}
	}
	if buildErr != nil {
		t.Fatalf("selfhost: %v", buildErr)
	}
	return built
}

// Process is an etcdpki process a test runs (a controller replica, an
// agent): its output is kept, and written to the test's log if the test
// fails; it is killed when the test ends.
type Process struct {
	// Name says which process it is in messages ("controller-1").
	Name string
	Cmd  *exec.Cmd

	out    etcdtest.Buffer
	exited chan struct{}
	err    error // how it ended, once exited is closed
}

// Etcdpki is a command running the built etcdpki with args; a test may
// set its Env or Dir before handing it to Run.
func Etcdpki(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command(Binary(t), args...)
}

// StartEtcdpki runs etcdpki with args as a process named name.
func StartEtcdpki(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	return Run(t, name, Etcdpki(t, args...))
}

// Run starts cmd in a process group of its own that dies with the test
// binary (etcdtest.StartProcess), its stdout and stderr kept together.
func Run(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := etcdtest.StartProcess(cmd); err != nil {
		t.Fatalf("selfhost: start %s (%s): %v", name, strings.Join(cmd.Args, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("selfhost: output of %s (%s, pid %d):\n%s", name, strings.Join(cmd.Args, " "), cmd.Process.Pid, p.Output())
		}
	})
	return p
}

// PID is the process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Output is everything the process wrote so far, stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

func (p *Process) signal(sig syscall.Signal) {
	select {
	case <-p.exited:
	default:
		// The group: a process that runs commands takes them with it.
		_ = etcdtest.SignalGroup(p.PID(), sig)
	}
}

// Kill kills the process with SIGKILL (kill -9: no cleanup, no lease
// released) and waits until it is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("selfhost: %s (pid %d) still runs 30s after SIGKILL", p.Name, p.PID())
	}
}

// Wait waits up to timeout for the process to exit on its own and returns
// its exit code (-1 when a signal ended it).
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("selfhost: %s (pid %d) still runs after %s; its output:\n%s", p.Name, p.PID(), timeout, p.Output())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// WaitOutput waits until the process's output contains substr; it fails
// t when the process exits first or ctx ends.
func (p *Process) WaitOutput(t testing.TB, ctx context.Context, substr string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.Output(), substr) {
		select {
		case <-ctx.Done():
			t.Fatalf("selfhost: %s wrote no %q: %v; its output:\n%s", p.Name, substr, ctx.Err(), p.Output())
		case <-p.exited:
			if strings.Contains(p.Output(), substr) {
				return
			}
			t.Fatalf("selfhost: %s exited (%v) without writing %q; its output:\n%s", p.Name, p.err, substr, p.Output())
		case <-tick.C:
		}
	}
}
