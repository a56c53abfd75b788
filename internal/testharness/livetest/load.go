package livetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// EverythingDue is a renew-before longer than any leaf's life.
const EverythingDue = 87600 * time.Hour

// CheckOneHandOff wants a rolling restart to have moved leadership
// exactly once (the leader restarts last, after one hand-off), when the
// raft term says no other election happened. A busy machine can provoke
// one (a heartbeat late by an election timeout), and rotate then adapts
// its hand-off to the leader it finds: that is logged, and counted by
// the benchmarks (leader-changes/op), not failed.
func CheckOneHandOff(t testing.TB, what string, handOffs int, termDelta uint64) {
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

// StartChild runs this test binary as a real child process (a rotation
// to kill -9), with env added to its environment: TestMain sees the
// variable and runs the rotation instead of the tests. It returns the
// started command, a scanner over its stdout and its stderr.
func StartChild(t *testing.T, env ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
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

// Load is a kube-apiserver stand-in: writes and reads through all three
// endpoints with the apiserver's certificate, as fast as a paced loop
// goes, recording every error returned to the caller and every write
// etcd acknowledged (each to a key of its own, under prefix), so a test
// can read them all back afterwards (checkAcked).
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	prefix string

	ops, fails atomic.Int64
	mu         sync.Mutex
	worst      time.Duration
	slow       []string
	failures   []Failure
	acked      map[string]string
}

// LoadRuns numbers the loads of a test binary, so that each writes under
// a prefix of its own.
var LoadRuns atomic.Int64

// Failure is one request that returned an error to the caller.
type Failure struct {
	at   time.Time
	took time.Duration
	what string
	err  error
}

func (f Failure) String() string {
	return fmt.Sprintf("%s at %s after %s: %v", f.what, f.at.Format("15:04:05.000"), f.took.Round(time.Microsecond), f.err)
}

// Window is one leadership hand-off a run made: from MoveLeader (Start)
// until the new leader had settled (Took later).
type Window struct {
	Start time.Time
	Took  time.Duration
}

// Classify splits failures into proposals etcd dropped inside a
// leadership hand-off and everything else.
func Classify(handOffs []Window, failures []Failure) (dropped, other []string) {
	for _, f := range failures {
		known := strings.Contains(f.err.Error(), "raft proposal dropped") ||
			f.what == "put" && errors.Is(f.err, context.DeadlineExceeded)
		if known && InHandOff(handOffs, f.at) {
			dropped = append(dropped, f.String())
		} else {
			other = append(other, f.String())
		}
	}
	return dropped, other
}

// InHandOff reports whether t falls in one of the leadership hand-offs,
// from MoveLeader until the new leader had settled.
func InHandOff(handOffs []Window, t time.Time) bool {
	for _, h := range handOffs {
		if !t.Before(h.Start.Add(-10*time.Millisecond)) && !t.After(h.Start.Add(h.Took+10*time.Millisecond)) {
			return true
		}
	}
	return false
}

// SlowRequest is logged with its time, to line it up with rotate's steps.
const SlowRequest = 100 * time.Millisecond

type LoadStats struct {
	Ops, Fails int64
	Worst      time.Duration
	Took       time.Duration
	Slow       []string
	Failures   []Failure
	// prefix holds every key the load wrote; acked are the writes etcd
	// acknowledged, key to value.
	prefix string
	acked  map[string]string
}

// LoadWorkers is how many goroutines drive the load, each with one
// request in flight at a time.
const LoadWorkers = 3

// RequestTimeout is the apiserver's own etcd request timeout is 5s; the
// same here, so that "failed" means what it would mean to Kubernetes.
const RequestTimeout = 5 * time.Second

func StartLoad(t testing.TB, c *etcdtest.Cluster) *Load {
	t.Helper()
	// Under kube-apiserver's prefix, as the apiserver's own requests are:
	// with etcd auth on its certificate may touch nothing else.
	l := &Load{start: time.Now(), prefix: fmt.Sprintf("/registry/etcdpki-load/%d/", LoadRuns.Add(1)), acked: map[string]string{}}
	// Each attempt the client makes is traced with the member that
	// answered it, so a slow request can be put next to rotate's steps.
	trace := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var p peer.Peer
		t0 := time.Now()
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
		if d := time.Since(t0); d > SlowRequest || err != nil {
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
	for w := range LoadWorkers {
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
func (l *Load) do(what string, op func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	t0 := time.Now()
	err := op(ctx)
	d := time.Since(t0)
	l.ops.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.worst = max(l.worst, d)
	if d > SlowRequest {
		l.slow = append(l.slow, fmt.Sprintf("%s at %s took %s (err %v)", what, t0.Format("15:04:05.000"), d.Round(time.Millisecond), err))
	}
	if err != nil {
		l.fails.Add(1)
		l.failures = append(l.failures, Failure{at: t0, took: d, what: what, err: err})
	}
	return err == nil
}

func (l *Load) Stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return LoadStats{Ops: l.ops.Load(), Fails: l.fails.Load(), Worst: l.worst, Took: time.Since(l.start), Slow: l.slow, Failures: l.failures,
		prefix: l.prefix, acked: l.acked}
}

// CheckAcked is the load's correctness check: every write etcd
// acknowledged reads back, with its value, from every member (a
// linearizable read through each endpoint alone), using cfg, the TLS
// the apiserver would use now. The load must also have run: a load that
// wrote nothing would prove nothing. How many requests failed, and
// when, is not checked here: inside restart windows that depends on the
// machine's load, and BenchmarkRoll and friends report it.
func CheckAcked(t testing.TB, c *etcdtest.Cluster, cfg *tls.Config, sts ...LoadStats) {
	t.Helper()
	for _, st := range sts {
		if len(st.acked) == 0 {
			t.Errorf("the load (%s) had no write acknowledged in %s (%d requests, %d failed)", st.prefix, st.Took.Round(time.Millisecond), st.Ops, st.Fails)
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

func Pids(c *etcdtest.Cluster) map[string]int {
	out := map[string]int{}
	for _, m := range c.Members {
		out[m.Name] = m.PID()
	}
	return out
}

func Serials(t *testing.T, s *cluster.Spec) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tg := range pki.New(s).Targets {
		b, err := os.ReadFile(tg.CertPath())
		if err != nil {
			t.Fatal(err)
		}
		out[tg.ID] = SerialOfPEM(t, b)
	}
	return out
}

func SerialOfPEM(t *testing.T, b []byte) string {
	t.Helper()
	certs, err := ca.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return certx.Serial(certs)
}

func RaftTerm(t testing.TB, c *etcdtest.Cluster) uint64 {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), c.APIServerTLS(), 5*time.Second)
	l, ok := h.LeaderResult()
	if !ok {
		t.Fatalf("no leader: %+v", h)
	}
	return l.Status.RaftTerm
}

// CheckServing asserts that every member presents the certificates on
// disk on both ports.
func CheckServing(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	s := Serials(t, c.Spec)
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

func Served(c *etcdtest.Cluster, node string, renewed []issue.Renewed) bool {
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

func CheckHealthy(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), c.APIServerTLS(), 5*time.Second)
	if !h.Healthy() {
		for _, r := range h.Endpoints {
			t.Errorf("%s: healthy=%v %v", r.Endpoint, r.Healthy, r.Err())
		}
	}
}

func WaitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
