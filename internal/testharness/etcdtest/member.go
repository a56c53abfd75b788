package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/pki"
)

// StopTimeout bounds a graceful stop. etcd hands leadership away and
// closes its listeners within a few seconds; a member still alive after
// this is killed, and Stop reports it.
const StopTimeout = 30 * time.Second

// Member is one etcd process of a Cluster, started from the etcd.conf.yml
// that etcdpki wrote for its node. Its methods are safe for concurrent use.
type Member struct {
	// Name is the node name in the spec, which is also etcd's member name.
	Name string
	// ConfigFile is the etcd.conf.yml the member runs with.
	ConfigFile string
	// ClientURL and PeerURL are the member's advertised URLs.
	ClientURL string
	PeerURL   string
	// DataDir is the member's data directory.
	DataDir string

	c   *Cluster
	log logBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	err    error         // how the last process ended
}

// Start starts the member's etcd process. It does not wait for the member
// to serve; see WaitReady.
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c.isClosed() {
		// A control command racing the end of the test must not leave a
		// member behind the cleanup.
		return fmt.Errorf("start member %s: the test has ended", m.Name)
	}
	if m.runningLocked() {
		return fmt.Errorf("start member %s: already running (pid %d)", m.Name, m.cmd.Process.Pid)
	}
	cmd := exec.Command(m.c.etcdBin, "--config-file", m.ConfigFile)
	cmd.Env = etcdEnv()
	how := " --config-file " + m.ConfigFile
	if m.c.opts.FromEnv {
		envFile := filepath.Join(filepath.Dir(m.ConfigFile), pki.EnvFile)
		data, err := os.ReadFile(envFile)
		if err != nil {
			return fmt.Errorf("start member %s: %w", m.Name, err)
		}
		vars, err := pki.ParseEnv(data)
		if err != nil {
			return fmt.Errorf("start member %s: %s: %w", m.Name, envFile, err)
		}
		cmd = exec.Command(m.c.etcdBin)
		cmd.Env = etcdEnv()
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		how = " with the variables of " + envFile
	}
	cmd.Stdout = &m.log
	cmd.Stderr = &m.log
	m.log.mark("start " + m.c.etcdBin + how)
	if err := startProcess(cmd); err != nil {
		return fmt.Errorf("start member %s: %w", m.Name, err)
	}
	m.log.mark(fmt.Sprintf("pid %d", cmd.Process.Pid))
	exited := make(chan struct{})
	m.cmd, m.exited, m.err = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		m.log.mark(fmt.Sprintf("pid %d exited: %v", cmd.Process.Pid, exitStatus(err)))
		close(exited)
	}()
	return nil
}

// Stop stops the member gracefully with SIGTERM, as systemd would, and
// waits for it to exit. A member still running after StopTimeout is killed
// and Stop returns an error. Stopping a stopped member does nothing.
func (m *Member) Stop() error {
	return m.signal(syscall.SIGTERM, StopTimeout)
}

// Kill kills the member with SIGKILL (a crash, a power cut) and waits for
// it to exit. Killing a stopped member does nothing.
func (m *Member) Kill() error {
	return m.signal(syscall.SIGKILL, StopTimeout)
}

// Restart stops the member gracefully and starts it again from the same
// config file: a real re-exec, so etcd re-reads its trusted CA file and
// config. It does not wait for the member to serve; see WaitReady.
func (m *Member) Restart() error {
	if err := m.Stop(); err != nil {
		return err
	}
	return m.Start()
}

func (m *Member) signal(sig syscall.Signal, timeout time.Duration) error {
	m.mu.Lock()
	if !m.runningLocked() {
		m.mu.Unlock()
		return nil
	}
	pid, exited := m.cmd.Process.Pid, m.exited
	m.mu.Unlock()

	m.log.mark(fmt.Sprintf("sending %s to pid %d", sigName(sig), pid))
	if err := signalGroup(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal member %s (pid %d): %w", m.Name, pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
	}
	_ = signalGroup(pid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("member %s (pid %d) still running %v after %s; killed it", m.Name, pid, timeout, sigName(sig))
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return sig.String()
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runningLocked()
}

func (m *Member) runningLocked() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// PID returns the process id of the running member, or 0.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.runningLocked() {
		return 0
	}
	return m.cmd.Process.Pid
}

// Exited returns a channel closed when the current process exits (already
// closed when the member is not running), and how the process ended.
func (m *Member) Exited() (<-chan struct{}, func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exited == nil {
		ch := make(chan struct{})
		close(ch)
		return ch, func() error { return nil }
	}
	return m.exited, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.err
	}
}

// Log returns everything the member has written to stdout and stderr since
// the cluster was created, across restarts, with the harness's own
// "=== etcdtest:" lines marking starts, signals and exits.
func (m *Member) Log() string { return m.log.String() }

// LogTail returns the last n lines of the member's log.
func (m *Member) LogTail(n int) string { return m.log.Tail(n) }

// WaitLog waits until the member's log contains substr.
func (m *Member) WaitLog(ctx context.Context, substr string) error {
	for {
		if strings.Contains(m.log.String(), substr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("member %s: %q not in its log: %w", m.Name, substr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReady waits until the member answers a linearizable read through its
// own client URL with the kube-apiserver's client certificate: the member
// is up, trusts the apiserver's cert, is part of a cluster with a leader and
// has caught up with it. It fails fast when the process exits.
func (m *Member) WaitReady(ctx context.Context) error {
	exited, _ := m.Exited()
	select {
	case <-exited:
		return fmt.Errorf("member %s is not running\n%s", m.Name, m.log.Tail(tailLines))
	default:
	}
	cli, err := m.c.newClient(m.c.APIServerTLS(), m.ClientURL)
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Get(rctx, "etcdtest/ready")
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("member %s exited while waiting for it to serve: %v\n%s", m.Name, last, m.log.Tail(tailLines))
		case <-ctx.Done():
			return fmt.Errorf("member %s does not answer a linearizable read at %s: %v (%w)", m.Name, m.ClientURL, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitListening waits until the member accepts TCP connections on its
// client URL: it has started, not necessarily joined its cluster.
func (m *Member) waitListening(ctx context.Context) error {
	u, err := url.Parse(m.ClientURL)
	if err != nil {
		return err
	}
	exited, _ := m.Exited()
	for {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("member %s exited before listening on %s", m.Name, u.Host)
		case <-ctx.Done():
			return fmt.Errorf("member %s does not listen on %s: %w", m.Name, u.Host, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Client returns a client for this member alone with the kube-apiserver's
// certificate, closed when the test ends.
func (m *Member) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return m.c.Client(t, m.ClientURL)
}

// etcdEnv is the test binary's environment without ETCD_* variables: etcd
// reads those as flags (and warns about unknown ones such as the
// Makefile's ETCD_BIN), which would make the member's behaviour depend on
// the caller's shell instead of on the config file etcdpki wrote.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Buffer is a bytes.Buffer safe for a writer and readers at once: a
// process's output, written from the exec package's copying goroutine,
// or a run's log, while a test reads it. It is the tests' one such
// buffer.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logBuffer collects a member's output.
type logBuffer struct{ Buffer }

// mark writes a harness line, so a log read after a failure shows which
// process said what.
func (b *logBuffer) mark(msg string) {
	fmt.Fprintf(b, "=== etcdtest %s: %s\n", time.Now().Format("15:04:05.000"), msg)
}

// tailLines is how much of a member's log goes into an error or a failed
// test's output: enough for the last start and its failure, short enough
// to read. Set ETCDTEST_FULL_LOGS=1 for everything.
const tailLines = 120

// Tail returns the last n lines of the log (all of it with
// ETCDTEST_FULL_LOGS=1).
func (b *logBuffer) Tail(n int) string {
	s := b.String()
	if os.Getenv("ETCDTEST_FULL_LOGS") != "" {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d earlier lines; ETCDTEST_FULL_LOGS=1 shows them]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}
