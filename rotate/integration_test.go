package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
	"go.yaml.in/yaml/v3"
)

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
	os.Exit(m.Run())
}

func child(specPath string) int {
	s, err := cluster.Load(specPath, cluster.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = rotate.Run(context.Background(), pki.New(s), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: os.Stdout})
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
	pids := livetest.Pids(c)
	before := livetest.Serials(t, c.Spec)
	var out bytes.Buffer
	_, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
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
	if after := livetest.Serials(t, c.Spec); !maps.Equal(before, after) {
		t.Errorf("certificates changed although rotate refused")
	}
}

func testRollsUnderLoad(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	before := livetest.Serials(t, c.Spec)
	var plan bytes.Buffer
	if _, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, DryRun: true, Out: &plan}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	t.Logf("dry run:\n%s", plan.String())
	if !strings.Contains(plan.String(), "[3/3]") || !strings.Contains(plan.String(), "MoveLeader") {
		t.Errorf("dry run does not show three restarts ending with the leader:\n%s", plan.String())
	}
	if !maps.Equal(before, livetest.Serials(t, c.Spec)) {
		t.Fatal("dry run changed certificates")
	}
	termBefore := livetest.RaftTerm(t, c)
	pidsBefore := livetest.Pids(c)
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	res, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: &out})
	st := ld.Stop()
	t.Logf("rotate output:\n%s", out.String())
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	t.Logf("load: %d requests in %s (%.0f/s), %d failed, worst latency %s", st.Ops, st.Took.Round(time.Millisecond), float64(st.Ops)/st.Took.Seconds(), st.Fails, st.Worst)
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
	dropped, other := livetest.Classify(windows(res.HandOffs), st.Failures)
	if len(dropped)+len(other) > 0 {
		t.Logf("FAILED during the rolling restart: %d inside the leader hand-off, %d elsewhere:\n  %s",
			len(dropped), len(other), strings.Join(append(dropped, other...), "\n  "))
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	livetest.CheckOneHandOff(t, "the rolling restart", len(res.HandOffs), livetest.RaftTerm(t, c)-termBefore)
	if len(res.Members) != 3 {
		t.Errorf("restarted %d members, want 3", len(res.Members))
	}
	for name, pid := range pidsBefore {
		if c.Member(name).PID() == pid {
			t.Errorf("member %s still runs as pid %d: not restarted", name, pid)
		}
	}
	for _, s := range st.Slow {
		t.Logf("slow request: %s", s)
	}
	if os.Getenv("ROTATE_TEST_MEMBER_LOGS") != "" {
		for _, m := range c.Members {
			t.Logf("log of %s:\n%s", m.Name, m.LogTail(400))
		}
	}
	after := livetest.Serials(t, c.Spec)
	for id, s := range after {
		if before[id] == s {
			t.Errorf("certificate %s was not renewed", id)
		}
	}
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
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
		} else if got := livetest.SerialOfPEM(t, b); got != before[t0.ID] {
			t.Errorf("backup of %s has serial %s, want the old serial %s", t0.ID, got, before[t0.ID])
		}
	}
}

func testResumes(t *testing.T, c *etcdtest.Cluster) {
	cmd, sc, stderr := livetest.StartChild(t, childEnv+"="+c.SpecPath)
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
	pids := livetest.Pids(c)
	var out bytes.Buffer
	res, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Restart: rotate.RestartAlways, Out: &out})
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
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
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
	pids := livetest.Pids(c)
	var out bytes.Buffer
	_, err = rotate.Run(ctx, pki.New(&broken), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: &out, MemberTimeout: 3 * time.Second})
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
	res, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Restart: rotate.RestartAlways, Out: &out})
	t.Logf("next run:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 3 || len(res.Renewed) != 0 {
		t.Errorf("next run restarted %d members and renewed %d certificates; want 3 and 0", len(res.Members), len(res.Renewed))
	}
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
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
	livetest.WaitFor(t, 60*time.Second, func() bool { return m.PID() != pid && livetest.Served(c, m.Name, renewed) })
	t.Logf("watch rolled %s %s after its files were replaced", m.Name, time.Since(start).Round(time.Millisecond))
	livetest.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "[1/1] "+m.Name+": restarted") })

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
	livetest.WaitFor(t, 30*time.Second, func() bool { _, err := os.Stat(crt); return err == nil })
	// The config is written by the same pass, after the certificates.
	livetest.WaitFor(t, 10*time.Second, func() bool { _, err := os.Stat(c.Paths.NodeConfig("etcd-4")); return err == nil })
	w.stop(t)
	if _, err := os.Stat(c.Paths.NodeConfig("etcd-4")); err != nil {
		t.Errorf("the new node has no etcd.conf.yml: %v", err)
	}
	t.Logf("watch output:\n%s", out.String())
	livetest.CheckHealthy(t, c)
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
		w.done <- rotate.Watch(ctx, pki.New(c.Spec), rotate.WatchOptions{Options: rotate.Options{Restart: mode, Out: w.out}, Interval: time.Hour, Load: func() (*pki.Inventory, error) {
			s, err := cluster.Load(c.SpecPath, cluster.Options{PKIDir: c.Spec.PKIDir})
			if err != nil {
				return nil, err
			}
			return pki.New(s), nil
		}})
	}()
	livetest.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(w.out.String(), "watching") })
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
	livetest.WaitFor(t, 60*time.Second, func() bool { return strings.Contains(out.String(), "[1/3]") })
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
	pids := livetest.Pids(c)
	var rest bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{Restart: rotate.RestartAlways, Out: &rest})
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
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
}

// windows are the run's leadership hand-offs, for livetest.Classify.
func windows(hs []runner.HandOff) []livetest.Window {
	var ws []livetest.Window
	for _, h := range hs {
		ws = append(ws, livetest.Window{Start: h.Start, Took: h.Took})
	}
	return ws
}
