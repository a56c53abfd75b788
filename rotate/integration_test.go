package rotate_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// everythingDue is a renew-before longer than any leaf's life.
const everythingDue = 87600 * time.Hour

// childEnv makes the test binary run one rotation of the spec it names
// and exit, so a test can kill -9 a real rotate process.
const childEnv = "ROTATE_TEST_CHILD_SPEC"

// TestMain runs the child processes the kill tests start (see
// startChild), or the tests.
//
// Every test that runs on a cluster of its own and touches no
// process-wide state calls t.Parallel: most of its time is waiting (for
// etcd to start, restart and elect, for certificates to expire), so such
// tests overlap well, and each cluster has free ports of its own. Tests
// that set process-wide state stay sequential: atomicdir.SetHook (the
// crash-at-every-step tests) and SOFTHSM2_CONF (the CA-key-in-a-token
// tests). Go runs every sequential test of a package before its parallel
// ones, so the two kinds never overlap. `make test` passes -parallel 4.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(child(spec))
	}
	if spec := os.Getenv(caChildEnv); spec != "" {
		os.Exit(caChild(spec))
	}
	os.Exit(m.Run())
}

func child(specPath string) int {
	s, err := cluster.Load(specPath, cluster.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = rotate.Run(context.Background(), rotate.Options{Spec: s, RenewBefore: everythingDue, Restart: rotate.RestartAlways, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestRotate runs every acceptance scenario on one real cluster, in
// order: each leaves the cluster healthy for the next.
func TestRotate(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := etcdtest.Start(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		// Short-lived leaves, as a cluster that rotates often would have.
		f.Certs.Validity = "2h"
	}})
	t.Run("RefusesWhenAMemberIsDown", func(t *testing.T) { testRefuses(t, c) })
	t.Run("RollsUnderLoad", func(t *testing.T) { testRollsUnderLoad(t, c) })
	t.Run("ResumesAfterKill", func(t *testing.T) { testResumes(t, c) })
	t.Run("StopsWhenAMemberDoesNotComeBack", func(t *testing.T) { testStopsOnDeadMember(t, c) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, c) })
	t.Run("WatchStopsBetweenMembers", func(t *testing.T) { testWatchStops(t, c) })
}

func testRefuses(t *testing.T, c *etcdtest.Cluster) {
	down := c.Members[2]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.StartAll(ctx); err != nil {
			t.Fatal(err)
		}
	})
	pids := pids(c)
	before := serials(t, c.Spec)
	var out bytes.Buffer
	_, err := rotate.Run(context.Background(), rotate.Options{Spec: c.Spec, RenewBefore: everythingDue, Out: &out})
	t.Logf("rotate output:\n%s", out.String())
	if err == nil {
		t.Fatal("rotate succeeded with a member down")
	}
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 1 {
		t.Errorf("error %v: want exit code 1", err)
	}
	if !strings.Contains(err.Error(), down.Name) {
		t.Errorf("error does not name member %s: %v", down.Name, err)
	}
	for name, pid := range pids {
		if name != down.Name && c.Member(name).PID() != pid {
			t.Errorf("member %s was restarted", name)
		}
	}
	if after := serials(t, c.Spec); !maps.Equal(before, after) {
		t.Errorf("certificates changed although rotate refused")
	}
}

func testRollsUnderLoad(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	before := serials(t, c.Spec)
	var plan bytes.Buffer
	if _, err := rotate.Run(ctx, rotate.Options{Spec: c.Spec, RenewBefore: everythingDue, Restart: rotate.RestartAlways, DryRun: true, Out: &plan}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	t.Logf("dry run:\n%s", plan.String())
	if !strings.Contains(plan.String(), "[3/3]") || !strings.Contains(plan.String(), "MoveLeader") {
		t.Errorf("dry run does not show three restarts ending with the leader:\n%s", plan.String())
	}
	if !maps.Equal(before, serials(t, c.Spec)) {
		t.Fatal("dry run changed certificates")
	}
	termBefore := raftTerm(t, c)
	pidsBefore := pids(c)
	ld := startLoad(t, c)
	var out bytes.Buffer
	res, err := rotate.Run(ctx, rotate.Options{Spec: c.Spec, RenewBefore: everythingDue, Restart: rotate.RestartAlways, Out: &out})
	st := ld.stop()
	t.Logf("rotate output:\n%s", out.String())
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	t.Logf("load: %d requests in %s (%.0f/s), %d failed, worst latency %s", st.ops, st.took.Round(time.Millisecond), float64(st.ops)/st.took.Seconds(), st.fails, st.worst)
	t.Logf("rotation: total %s, floor (sum of restart-to-healthy) %s, ratio %.2f", res.Took.Round(time.Millisecond), res.Floor().Round(time.Millisecond), float64(res.Took)/float64(res.Floor()))
	for _, m := range res.Members {
		t.Logf("  %s: restart-to-healthy %s", m.Name, m.Restart.Round(time.Millisecond))
	}
	for _, h := range res.HandOffs {
		t.Logf("  hand-off %s -> %s: %s", h.From, h.To, h.Took.Round(time.Millisecond))
	}
	// etcd drops proposals while leadership moves, for about 3 ms (seen
	// in the members' raft logs): the old leader while the transfer is
	// pending, and every member until it knows the new leader. A client
	// of the member doing the dropping gets "raft proposal dropped"
	// (code Unknown, which clientv3 does not retry); a proposal another
	// member forwarded into that window is dropped silently and its client
	// waits for its deadline. A member that restarts slowly on a busy
	// machine can hold a request past its 5 s deadline too. Every request
	// here runs inside the rolling restart, so how many fail depends on
	// the machine's load: they are logged here and counted by
	// BenchmarkRoll (failed-requests/op, failed-in-hand-off/op), not
	// asserted. What is asserted is what must hold on any machine: the
	// rotation finishes with exactly one hand-off, every member restarted
	// and serving its new certificates, the cluster healthy, and every
	// write etcd acknowledged reads back from every member.
	dropped, other := classify(res, st.failures)
	if len(dropped)+len(other) > 0 {
		t.Logf("FAILED during the rolling restart: %d inside the leader hand-off, %d elsewhere:\n  %s",
			len(dropped), len(other), strings.Join(append(dropped, other...), "\n  "))
	}
	checkAcked(t, c, c.APIServerTLS(), st)
	checkOneHandOff(t, "the rolling restart", len(res.HandOffs), raftTerm(t, c)-termBefore)
	if len(res.Members) != 3 {
		t.Errorf("restarted %d members, want 3", len(res.Members))
	}
	for name, pid := range pidsBefore {
		if c.Member(name).PID() == pid {
			t.Errorf("member %s still runs as pid %d: not restarted", name, pid)
		}
	}
	for _, s := range st.slow {
		t.Logf("slow request: %s", s)
	}
	if os.Getenv("ROTATE_TEST_MEMBER_LOGS") != "" {
		for _, m := range c.Members {
			t.Logf("log of %s:\n%s", m.Name, m.LogTail(400))
		}
	}
	after := serials(t, c.Spec)
	for id, s := range after {
		if before[id] == s {
			t.Errorf("certificate %s was not renewed", id)
		}
	}
	checkServing(t, c)
	checkHealthy(t, c)
	// The previous pairs are in the run's backup directory, one
	// PKI/backup/<time> for the whole run, each under its own path.
	root := ""
	for _, t0 := range pki.New(c.Spec).Targets {
		if !strings.HasSuffix(t0.ID, "etcd-server") {
			continue
		}
		i := slices.IndexFunc(res.Renewed, func(r issue.Renewed) bool { return r.Target.ID == t0.ID })
		if i < 0 {
			t.Errorf("%s is not among the run's renewals", t0.ID)
			continue
		}
		rel, err := filepath.Rel(c.Spec.PKIDir, t0.Dir)
		if err != nil {
			t.Fatal(err)
		}
		dir := res.Renewed[i].Backup
		r, ok := strings.CutSuffix(dir, string(filepath.Separator)+rel)
		if !ok || filepath.Dir(r) != c.Paths.Backups() || root != "" && r != root {
			t.Errorf("old %s backed up in %s, want %s/<time>/%s in the run's one backup directory", t0.ID, dir, c.Paths.Backups(), rel)
		}
		root = r
		b, err := os.ReadFile(filepath.Join(dir, t0.CertName))
		if err != nil {
			t.Errorf("old %s not in the backup directory: %v", t0.ID, err)
		} else if got := serialOfPEM(t, b); got != before[t0.ID] {
			t.Errorf("backup of %s has serial %s, want the old serial %s", t0.ID, got, before[t0.ID])
		}
	}
}

// checkOneHandOff wants a rolling restart to have moved leadership
// exactly once (the leader restarts last, after one hand-off), when the
// raft term says no other election happened. A busy machine can provoke
// one (a heartbeat late by an election timeout), and rotate then adapts
// its hand-off to the leader it finds: that is logged, and counted by
// the benchmarks (leader-changes/op), not failed.
func checkOneHandOff(t testing.TB, what string, handOffs int, termDelta uint64) {
	t.Helper()
	t.Logf("%s: %d hand-off(s), raft term up by %d", what, handOffs, termDelta)
	if termDelta > uint64(handOffs) {
		t.Logf("%s: %d election(s) besides rotate's hand-offs (a busy machine)", what, termDelta-uint64(handOffs))
		return
	}
	if handOffs != 1 {
		t.Errorf("%s: %d leadership hand-offs and no other election, want exactly 1", what, handOffs)
	}
}

// startChild runs this test binary as a real child process (a rotation
// to kill -9), with env added to its environment: TestMain sees the
// variable and runs the rotation instead of the tests. It returns the
// started command, a scanner over its stdout and its stderr.
func startChild(t *testing.T, env ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stdout), stderr
}

func testResumes(t *testing.T, c *etcdtest.Cluster) {
	cmd, sc, stderr := startChild(t, childEnv+"="+c.SpecPath)
	first := ""
	var log strings.Builder
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if strings.Contains(line, "[1/3]") && strings.Contains(line, ": restarted") {
			// The first member is done: kill the run right there.
			_ = cmd.Process.Signal(syscall.SIGKILL)
			f := strings.Fields(line[strings.Index(line, "[1/3]"):])
			first = strings.TrimSuffix(f[1], ":")
			break
		}
	}
	_ = cmd.Wait()
	t.Logf("killed run's output:\n%s%s", log.String(), stderr.String())
	if first == "" {
		t.Fatal("the child rotate never finished a member")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The kill may have come while the next member was being restarted
	// by the harness; let it come back before the next run checks health.
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	pids := pids(c)
	var out bytes.Buffer
	res, err := rotate.Run(ctx, rotate.Options{Spec: c.Spec, Restart: rotate.RestartAlways, Out: &out})
	t.Logf("resumed run's output:\n%s", out.String())
	if err != nil {
		t.Fatalf("resumed rotate: %v", err)
	}
	if c.Member(first).PID() != pids[first] {
		t.Errorf("member %s, done before the kill, was restarted again", first)
	}
	for _, m := range res.Members {
		if m.Name == first {
			t.Errorf("resumed run restarted %s", first)
		}
	}
	if len(res.Renewed) != 0 {
		t.Errorf("resumed run renewed %d certificates again", len(res.Renewed))
	}
	checkServing(t, c)
	checkHealthy(t, c)
}

// testStopsOnDeadMember gives the first member to restart a restart
// command that kills it: rotate waits out its member timeout, exits 1
// naming it, and touches no other member; once the member is back the
// next run finishes the job.
func testStopsOnDeadMember(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Followers go first, in spec order.
	victim := ""
	broken := *c.Spec
	broken.Nodes = append([]cluster.Node(nil), c.Spec.Nodes...)
	for i, n := range broken.Nodes {
		if n.Name != leader.Name && victim == "" {
			victim = n.Name
			broken.Nodes[i].Restart = strings.ReplaceAll(c.ControlCommand("kill"), "{{.Name}}", n.Name)
		}
	}
	pids := pids(c)
	var out bytes.Buffer
	_, err = rotate.Run(ctx, rotate.Options{Spec: &broken, RenewBefore: everythingDue, Restart: rotate.RestartAlways, Out: &out, MemberTimeout: 3 * time.Second})
	t.Logf("rotate output:\n%s", out.String())
	var me *runner.MemberError
	if !errors.As(err, &me) || me.Member != victim || me.ExitCode() != 1 {
		t.Fatalf("got %v, want a MemberError for %s with exit code 1", err, victim)
	}
	t.Logf("error: %v", err)
	for name, pid := range pids {
		if name != victim && c.Member(name).PID() != pid {
			t.Errorf("member %s was touched after %s failed", name, victim)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.StartAll(rctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	res, err := rotate.Run(ctx, rotate.Options{Spec: c.Spec, Restart: rotate.RestartAlways, Out: &out})
	t.Logf("next run:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 3 || len(res.Renewed) != 0 {
		t.Errorf("next run restarted %d members and renewed %d certificates; want 3 and 0", len(res.Members), len(res.Renewed))
	}
	checkServing(t, c)
	checkHealthy(t, c)
}

func testWatch(t *testing.T, c *etcdtest.Cluster) {
	w := startWatch(t, c, rotate.RestartAlways) // its first pass finds nothing to do
	ctx, out := w.ctx, w.out
	m := c.Members[1]
	pid := m.PID()
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{m.Name + "/etcd-server", m.Name + "/etcd-peer"})
	renewed, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 60*time.Second, func() bool { return m.PID() != pid && served(c, m.Name, renewed) })
	t.Logf("watch rolled %s %s after its files were replaced", m.Name, time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "[1/1] "+m.Name+": restarted") })

	// A node added to the spec gets its certificates. It is not started:
	// joining it is the operator's move (etcdctl member add).
	f := c.File
	f.Nodes = append(append([]etcdtest.SpecNode(nil), f.Nodes...), etcdtest.SpecNode{Name: "etcd-4", IPs: []string{etcdtest.NodeIP(4)}, ClientPort: 40001, PeerPort: 40002})
	data, err := yaml.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.SpecPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	crt, _ := etcdtest.NodePair(c.Paths, "etcd-4", "server")
	waitFor(t, 30*time.Second, func() bool { _, err := os.Stat(crt); return err == nil })
	// The config is written by the same pass, after the certificates.
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(c.Paths.NodeConfig("etcd-4")); return err == nil })
	w.stop(t)
	if _, err := os.Stat(c.Paths.NodeConfig("etcd-4")); err != nil {
		t.Errorf("the new node has no etcd.conf.yml: %v", err)
	}
	t.Logf("watch output:\n%s", out.String())
	checkHealthy(t, c)
}

// watching is a running rotate.Watch.
type watching struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    *etcdtest.Buffer
	done   chan error
}

// startWatch starts rotate.Watch on the cluster and waits until it
// watches; the test stops it with stop (or it is stopped at cleanup).
func startWatch(t *testing.T, c *etcdtest.Cluster, mode rotate.RestartMode) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{ctx: ctx, cancel: cancel, out: &etcdtest.Buffer{}, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() {
		w.done <- rotate.Watch(ctx, rotate.WatchOptions{Options: rotate.Options{Spec: c.Spec, Restart: mode, Out: w.out}, Interval: time.Hour})
	}()
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(w.out.String(), "watching") })
	return w
}

// stop cancels the watch (as SIGTERM does) and requires a clean exit.
func (w *watching) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("watch ended with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("watch did not stop after its context was cancelled")
	}
}

// testWatchStops cancels --watch (SIGTERM) while it rolls the members:
// the member being restarted is finished, the others are left for the
// next run, which restarts only them.
func testWatchStops(t *testing.T, c *etcdtest.Cluster) {
	w := startWatch(t, c, rotate.RestartAlways)
	ctx, out := w.ctx, w.out
	var targets []pki.Target
	for _, m := range c.Members {
		ts, _ := pki.Select(pki.New(c.Spec).Targets, []string{m.Name + "/etcd-server", m.Name + "/etcd-peer"})
		targets = append(targets, ts...)
	}
	if _, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(out.String(), "[1/3]") })
	w.stop(t)
	t.Logf("watch output:\n%s", out.String())
	if !strings.Contains(out.String(), "interrupted before restarting") {
		t.Errorf("watch did not say it stopped between members")
	}
	// The cancel may land while the watch already works on the second
	// member; whatever it finished must not be restarted again.
	var finished []string
	for _, line := range strings.Split(out.String(), "\n") {
		if i := strings.Index(line, "/3] "); i >= 0 && strings.Contains(line, ": restarted") {
			finished = append(finished, strings.TrimSuffix(strings.Fields(line[i+4:])[0], ":"))
		}
	}
	if len(finished) == 0 || len(finished) == 3 {
		t.Fatalf("watch finished %d members before stopping; want some but not all", len(finished))
	}
	pids := pids(c)
	var rest bytes.Buffer
	res, err := rotate.Run(context.Background(), rotate.Options{Spec: c.Spec, Restart: rotate.RestartAlways, Out: &rest})
	t.Logf("next run:\n%s", rest.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 3-len(finished) {
		t.Errorf("next run restarted %d members, want the %d left", len(res.Members), 3-len(finished))
	}
	for _, name := range finished {
		if c.Member(name).PID() != pids[name] {
			t.Errorf("member %s, finished by the watch, was restarted again", name)
		}
	}
	checkServing(t, c)
	checkHealthy(t, c)
}

// load is a kube-apiserver stand-in: writes and reads through all three
// endpoints with the apiserver's certificate, as fast as a paced loop
// goes, recording every error returned to the caller and every write
// etcd acknowledged (each to a key of its own, under prefix), so a test
// can read them all back afterwards (checkAcked).
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	prefix string

	ops, fails atomic.Int64
	mu         sync.Mutex
	worst      time.Duration
	slow       []string
	failures   []failure
	acked      map[string]string
}

// loadRuns numbers the loads of a test binary, so that each writes under
// a prefix of its own.
var loadRuns atomic.Int64

// failure is one request that returned an error to the caller.
type failure struct {
	at   time.Time
	took time.Duration
	what string
	err  error
}

func (f failure) String() string {
	return fmt.Sprintf("%s at %s after %s: %v", f.what, f.at.Format("15:04:05.000"), f.took.Round(time.Microsecond), f.err)
}

// classify splits failures into proposals etcd dropped inside a
// leadership hand-off and everything else.
func classify(res *rotate.Result, failures []failure) (dropped, other []string) {
	for _, f := range failures {
		known := strings.Contains(f.err.Error(), "raft proposal dropped") ||
			f.what == "put" && errors.Is(f.err, context.DeadlineExceeded)
		if known && inHandOff(res, f.at) {
			dropped = append(dropped, f.String())
		} else {
			other = append(other, f.String())
		}
	}
	return dropped, other
}

// inHandOff reports whether t falls in a leadership hand-off of res,
// from MoveLeader until the new leader had settled.
func inHandOff(res *rotate.Result, t time.Time) bool {
	for _, h := range res.HandOffs {
		if !t.Before(h.Start.Add(-10*time.Millisecond)) && !t.After(h.Start.Add(h.Took+10*time.Millisecond)) {
			return true
		}
	}
	return false
}

// slowRequest is logged with its time, to line it up with rotate's steps.
const slowRequest = 100 * time.Millisecond

type loadStats struct {
	ops, fails int64
	worst      time.Duration
	took       time.Duration
	slow       []string
	failures   []failure
	// prefix holds every key the load wrote; acked are the writes etcd
	// acknowledged, key to value.
	prefix string
	acked  map[string]string
}

// loadWorkers is how many goroutines drive the load, each with one
// request in flight at a time.
const loadWorkers = 3

// requestTimeout is the apiserver's own etcd request timeout is 5s; the
// same here, so that "failed" means what it would mean to Kubernetes.
const requestTimeout = 5 * time.Second

func startLoad(t testing.TB, c *etcdtest.Cluster) *load {
	t.Helper()
	l := &load{start: time.Now(), prefix: fmt.Sprintf("load/%d/", loadRuns.Add(1)), acked: map[string]string{}}
	// Each attempt the client makes is traced with the member that
	// answered it, so a slow request can be put next to rotate's steps.
	trace := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var p peer.Peer
		t0 := time.Now()
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
		if d := time.Since(t0); d > slowRequest || err != nil {
			l.mu.Lock()
			l.slow = append(l.slow, fmt.Sprintf("attempt %s at %s on %v took %s err %v", method, t0.Format("15:04:05.000"), p.Addr, d.Round(time.Millisecond), err))
			l.mu.Unlock()
		}
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.APIServerTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(trace)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range loadWorkers {
		l.wg.Go(func() {
			tick := time.NewTicker(15 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				key, val := fmt.Sprintf("%s%d/%d", l.prefix, w, i), fmt.Sprint(i)
				if l.do("put", func(rctx context.Context) error {
					_, err := cli.Put(rctx, key, val)
					return err
				}) {
					l.mu.Lock()
					l.acked[key] = val
					l.mu.Unlock()
				}
				l.do("get", func(rctx context.Context) error {
					_, err := cli.Get(rctx, key)
					return err
				})
			}
		})
	}
	return l
}

// do runs one request and records it; it reports whether it succeeded.
func (l *load) do(what string, op func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	t0 := time.Now()
	err := op(ctx)
	d := time.Since(t0)
	l.ops.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.worst = max(l.worst, d)
	if d > slowRequest {
		l.slow = append(l.slow, fmt.Sprintf("%s at %s took %s (err %v)", what, t0.Format("15:04:05.000"), d.Round(time.Millisecond), err))
	}
	if err != nil {
		l.fails.Add(1)
		l.failures = append(l.failures, failure{at: t0, took: d, what: what, err: err})
	}
	return err == nil
}

func (l *load) stop() loadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadStats{ops: l.ops.Load(), fails: l.fails.Load(), worst: l.worst, took: time.Since(l.start), slow: l.slow, failures: l.failures,
		prefix: l.prefix, acked: l.acked}
}

// checkAcked is the load's correctness check: every write etcd
// acknowledged reads back, with its value, from every member (a
// linearizable read through each endpoint alone), using cfg, the TLS
// the apiserver would use now. The load must also have run: a load that
// wrote nothing would prove nothing. How many requests failed, and
// when, is not checked here: inside restart windows that depends on the
// machine's load, and BenchmarkRoll and friends report it.
func checkAcked(t testing.TB, c *etcdtest.Cluster, cfg *tls.Config, sts ...loadStats) {
	t.Helper()
	for _, st := range sts {
		if len(st.acked) == 0 {
			t.Errorf("the load (%s) had no write acknowledged in %s (%d requests, %d failed)", st.prefix, st.took.Round(time.Millisecond), st.ops, st.fails)
			continue
		}
		for _, ep := range c.Endpoints() {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: cfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			resp, err := cli.Get(ctx, st.prefix, clientv3.WithPrefix())
			cancel()
			cli.Close()
			if err != nil {
				t.Errorf("%s: reading back the load's writes: %v", ep, err)
				continue
			}
			got := make(map[string]string, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				got[string(kv.Key)] = string(kv.Value)
			}
			lost := 0
			for k, v := range st.acked {
				if got[k] != v {
					if lost++; lost <= 5 {
						t.Errorf("%s: acknowledged write %s=%s reads back as %q", ep, k, v, got[k])
					}
				}
			}
			if lost > 0 {
				t.Errorf("%s: %d of %d acknowledged writes lost", ep, lost, len(st.acked))
			}
		}
	}
}

func pids(c *etcdtest.Cluster) map[string]int {
	out := map[string]int{}
	for _, m := range c.Members {
		out[m.Name] = m.PID()
	}
	return out
}

func serials(t *testing.T, s *cluster.Spec) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tg := range pki.New(s).Targets {
		b, err := os.ReadFile(tg.CertPath())
		if err != nil {
			t.Fatal(err)
		}
		out[tg.ID] = serialOfPEM(t, b)
	}
	return out
}

func serialOfPEM(t *testing.T, b []byte) string {
	t.Helper()
	certs, err := ca.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return certx.Serial(certs)
}

func raftTerm(t testing.TB, c *etcdtest.Cluster) uint64 {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), c.APIServerTLS(), 5*time.Second)
	l, ok := h.LeaderResult()
	if !ok {
		t.Fatalf("no leader: %+v", h)
	}
	return l.Status.RaftTerm
}

// checkServing asserts that every member presents the certificates on
// disk on both ports.
func checkServing(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	s := serials(t, c.Spec)
	for _, n := range c.Spec.Nodes {
		for _, p := range []struct{ url, id string }{{n.ClientURLs[0], n.Name + "/etcd-server"}, {n.PeerURLs[0], n.Name + "/etcd-peer"}} {
			_, addr, _ := probe.ParseEndpoint(p.url)
			cert, err := probe.ServingCert(context.Background(), addr, c.APIServerTLS())
			if err != nil {
				t.Errorf("%s: %v", addr, err)
				continue
			}
			if got := certx.Serial(cert); got != s[p.id] {
				t.Errorf("%s serves serial %s, want %s (%s)", addr, got, s[p.id], p.id)
			}
		}
	}
}

func served(c *etcdtest.Cluster, node string, renewed []issue.Renewed) bool {
	n, _ := c.Spec.Node(node)
	for _, r := range renewed {
		u := n.ClientURLs[0]
		if strings.HasSuffix(r.Target.ID, "etcd-peer") {
			u = n.PeerURLs[0]
		}
		_, addr, _ := probe.ParseEndpoint(u)
		cert, err := probe.ServingCert(context.Background(), addr, c.APIServerTLS())
		if err != nil || certx.Serial(cert) != r.NewSerial {
			return false
		}
	}
	return true
}

func checkHealthy(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), c.APIServerTLS(), 5*time.Second)
	if !h.Healthy() {
		for _, r := range h.Endpoints {
			t.Errorf("%s: healthy=%v %v", r.Endpoint, r.Healthy, r.Err())
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
