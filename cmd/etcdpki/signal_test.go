package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// etcdpkiBinary returns a path that runs this test binary as etcdpki's
// main (TestMain dispatches on the program name), signal handling included.
func etcdpkiBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "etcdpki")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// started runs etcdpki in dir and returns it with its stderr.
func started(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(etcdpkiBinary(t), args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &stderr
}

// exitWithin waits for cmd to end, failing the test if it is still
// running after d (a generous bound: the point is that it ends at all).
func exitWithin(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%v still running %v after SIGTERM", cmd.Args, d)
		return 0
	}
}

// initPKI makes a one-node PKI in dir with flags only.
func initPKI(t *testing.T, dir string) {
	t.Helper()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"etcdpki", "init", "--dir", filepath.Join(dir, "pki"), "--node", "n1=127.0.0.1"}, &out, &out); code != 0 {
		t.Fatalf("init: exit %d: %s", code, out.String())
	}
}

// verify against an endpoint that accepts the connection and never
// answers ends on SIGTERM, not after its hour-long --timeout.
func TestSIGTERMEndsVerifyAgainstASilentEndpoint(t *testing.T) {
	dir := t.TempDir()
	initPKI(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	cmd, stderr := started(t, dir, "verify", "--timeout", "1h", "--etcd-servers", "https://"+l.Addr().String(),
		"--etcd-cafile", "pki/apiserver/etcd/ca.crt", "--etcd-certfile", "pki/apiserver/apiserver-etcd-client.crt",
		"--etcd-keyfile", "pki/apiserver/apiserver-etcd-client.key")
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("verify never connected")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	// Ended by its cancelled context, not by the grace's forced exit
	// (which says "still running"): what tells them apart is the
	// message, not how soon it exits, which a busy machine can delay.
	if code := exitWithin(t, cmd, signalGrace+30*time.Second); code != exitFail {
		t.Errorf("exit code %d, want %d; stderr: %s", code, exitFail, stderr)
	}
	if strings.Contains(stderr.String(), "still running") {
		t.Errorf("verify ignored its cancelled context and was ended by the grace: %s", stderr)
	}
}

// A step blocked where no context reaches would swallow every SIGTERM and
// never end (it used to be opening a FIFO named as a key file; every
// input is now refused before it is opened, see inputs_test.go). The
// grace ends it, and a second signal ends it at once.
func TestSIGTERMEndsABlockedCommand(t *testing.T) {
	// Another test may have run rotate in this process, which sets it.
	prev := stepsFinish.Swap(false)
	defer stepsFinish.Store(prev)
	for _, twice := range []bool{false, true} {
		sigs := make(chan os.Signal, 2)
		exited := make(chan int, 1)
		var stderr bytes.Buffer
		cancelled := make(chan struct{})
		go stopOnSignal(sigs, func(error) { close(cancelled) }, &stderr, func(code int) { exited <- code })
		sigs <- syscall.SIGTERM
		<-cancelled // the step ignores it: nothing else ends the command
		limit, want := signalGrace+10*time.Second, "still running"
		if twice {
			sigs <- syscall.SIGTERM
			// The second signal ends it: its message, not the grace's.
			limit, want = signalGrace+10*time.Second, "received again: exiting now"
		}
		select {
		case code := <-exited:
			if code != exitFail {
				t.Errorf("twice=%v: exit code %d, want %d", twice, code, exitFail)
			}
		case <-time.After(limit):
			t.Fatalf("twice=%v: still running %v after SIGTERM", twice, limit)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("twice=%v: stderr %q does not say %q", twice, stderr.String(), want)
		}
		if twice && strings.Contains(stderr.String(), "still running") {
			t.Errorf("the second signal did not end it; the grace did: %q", stderr.String())
		}
	}
}

// rotate's steps (a member's restart, a deploy) run to their end after a
// signal, as docs/exit-codes.md promises: the grace does not cut them short, and
// only a second signal does.
func TestGraceSparesRotateSteps(t *testing.T) {
	stepsFinish.Store(true)
	defer stepsFinish.Store(false)
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	cancelled := make(chan struct{})
	go stopOnSignal(sigs, func(error) { close(cancelled) }, &stderr, func(code int) { exited <- code })
	sigs <- syscall.SIGTERM
	<-cancelled
	select {
	case <-exited:
		t.Fatalf("exited during a rotate step, %v after SIGTERM", signalGrace)
	case <-time.After(signalGrace + 500*time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != exitFail {
			t.Errorf("exit code %d, want %d", code, exitFail)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not end it")
	}
}
