package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// binDir holds the etcdpki binary the tests run as real processes,
// built once (buildOnce) and removed by TestMain.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// etcdpkiBin builds cmd/etcdpki once for the process tests.
func etcdpkiBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "etcdpki-controller-test-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "etcdpki"), "github.com/etcdpki/etcdpki/cmd/etcdpki").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "etcdpki")
}

// replica is one `etcdpki controller --leader-elect` process.
type replica struct {
	cmd *exec.Cmd
	// leading is closed when the process says it leads; holder is then
	// the Lease holder identity it says it leads as.
	leading chan struct{}
	holder  string
	mu      sync.Mutex
	out     strings.Builder
}

// lease is the election's timing for a run.
type lease struct{ duration, renew, retry time.Duration }

// shortLease makes the tests' failovers quick; it keeps client-go's
// rules (duration > renew deadline > 1.2 × retry period).
var shortLease = lease{3 * time.Second, 2 * time.Second, 500 * time.Millisecond}

func (e *env) startReplica(t testing.TB, ns string, l lease) *replica {
	t.Helper()
	r := &replica{leading: make(chan struct{})}
	r.cmd = exec.Command(etcdpkiBin(t), "controller", "--kubeconfig", e.controllerKubeconfig, "--namespace", ns, "--leader-elect",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--probe-interval", "1h",
		"--leader-elect-lease-duration", l.duration.String(), "--leader-elect-renew-deadline", l.renew.String(), "--leader-elect-retry-period", l.retry.String())
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	must(t, r.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if _, as, ok := strings.Cut(sc.Text(), ": leading as Lease holder "); ok {
				once.Do(func() {
					r.holder, _, _ = strings.Cut(as, ":")
					close(r.leading)
				})
			}
		}
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		pw.Close()
		if t.Failed() {
			r.mu.Lock()
			t.Logf("controller pid %d:\n%s", r.cmd.Process.Pid, r.out.String())
			r.mu.Unlock()
		}
	})
	return r
}

// leader waits until one of the replicas leads and returns it and the
// other.
func leader(t testing.TB, a, b *replica) (lead, other *replica) {
	t.Helper()
	select {
	case <-a.leading:
		return a, b
	case <-b.leading:
		return b, a
	case <-time.After(2 * time.Minute):
		t.Fatal("no replica leads")
	}
	return nil, nil
}

func (e *env) leaseHolder(t testing.TB, ns string) string {
	t.Helper()
	var l coordinationv1.Lease
	must(t, e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: v1alpha1.LeaseName}, &l))
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// pendingCSRs are the node's three CSRs, submitted at once.
func (f *fixture) submitNodeCSRs(t testing.TB, c client.Client, node, prefix string) []string {
	t.Helper()
	var names []string
	for _, kind := range []string{"etcd-server", "etcd-peer", "etcd-healthcheck-client"} {
		r, _ := f.honest(t, node+"/"+kind)
		r.name = prefix + "-" + kind
		submit(t, c, r)
		names = append(names, r.name)
	}
	return names
}

// TestLeaderKilledWhileCSRsPending runs two `etcdpki controller
// --leader-elect` processes. The leader is frozen, CSRs are submitted,
// and the frozen leader is killed -9: the other replica takes the Lease
// and signs every one of them.
func TestLeaderKilledWhileCSRsPending(t *testing.T) {
	e := startEnv(t)
	ns := e.namespace(t)
	f := e.newFixture(t, ns, parseSpec(t, kubeSpec))
	a, b := e.startReplica(t, ns, shortLease), e.startReplica(t, ns, shortLease)
	lead, other := leader(t, a, b)
	before := e.leaseHolder(t, ns)

	// Frozen, the leader holds the Lease and signs nothing: the CSRs
	// are pending when it dies.
	must(t, lead.cmd.Process.Signal(syscall.SIGSTOP))
	names := f.submitNodeCSRs(t, e.agent(t, v1alpha1.NodeUser("etcd-node-1")), "etcd-node-1", "failover")
	must(t, lead.cmd.Process.Signal(syscall.SIGKILL))

	for _, name := range names {
		csr := answered(t, e.Client, name)
		ok, _ := condition(csr, certificatesv1.CertificateApproved)
		if len(csr.Status.Certificate) == 0 || !strings.Contains(ok.Message, fmt.Sprintf("/%d: ", other.cmd.Process.Pid)) {
			t.Errorf("CSR %s: approval %q, certificate %d bytes; want signed by the surviving replica (pid %d)", name, ok.Message, len(csr.Status.Certificate), other.cmd.Process.Pid)
		}
	}
	select {
	case <-other.leading:
	default:
		t.Fatal("the surviving replica never said it leads")
	}
	if after := e.leaseHolder(t, ns); after == before || after != other.holder || before != lead.holder {
		t.Errorf("Lease holder %q before, %q after; the replicas said they lead as %q (killed) and %q", before, after, lead.holder, other.holder)
	}
}

// BenchmarkFailover measures, with the default lease settings, the time
// from kill -9 of the leading replica to every pending CSR signed by the
// other (the bound: the lease duration plus 5 s).
func BenchmarkFailover(b *testing.B) {
	e := startEnv(b)
	l := lease{DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := e.namespace(b)
		f := e.newFixture(b, ns, parseSpec(b, kubeSpec))
		r1, r2 := e.startReplica(b, ns, l), e.startReplica(b, ns, l)
		lead, _ := leader(b, r1, r2)
		// Signing works before the kill; then the leader stops mid-work.
		warm := f.submitNodeCSRs(b, e.agent(b, v1alpha1.NodeUser("etcd-node-2")), "etcd-node-2", fmt.Sprintf("warm-%d", i))
		for _, n := range warm {
			answered(b, e.Client, n)
		}
		must(b, lead.cmd.Process.Signal(syscall.SIGSTOP))
		names := f.submitNodeCSRs(b, e.agent(b, v1alpha1.NodeUser("etcd-node-1")), "etcd-node-1", fmt.Sprintf("kill-%d", i))
		b.StartTimer()
		start := time.Now()
		must(b, lead.cmd.Process.Signal(syscall.SIGKILL))
		for _, n := range names {
			answered(b, e.Client, n)
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-failover")
	b.ReportMetric(l.duration.Seconds(), "s-lease")
}
