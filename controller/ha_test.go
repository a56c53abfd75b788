package controller

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

func TestMain(m *testing.M) { selfhost.Main(m) }

// lease is the election's timing for a run.
type lease struct{ duration, renew, retry time.Duration }

// shortLease makes the tests' failovers quick; it keeps client-go's
// rules (duration > renew deadline > 1.2 × retry period).
var shortLease = lease{3 * time.Second, 2 * time.Second, 500 * time.Millisecond}

// startReplica runs `etcdpki controller --leader-elect` as a process,
// with the identity deploy/controller-rbac.yaml binds.
func (e *env) startReplica(t testing.TB, name, ns string, l lease) *selfhost.Process {
	t.Helper()
	args := append(selfhost.ControllerArgs(e.controllerKubeconfig, ns), "--probe-interval", "1h",
		"--leader-elect-lease-duration", l.duration.String(), "--leader-elect-renew-deadline", l.renew.String(), "--leader-elect-retry-period", l.retry.String())
	return selfhost.StartEtcdpki(t, name, args...)
}

// leadsAs is the Lease holder identity a replica says it leads as, ""
// while it does not lead.
func leadsAs(p *selfhost.Process) string {
	_, as, ok := strings.Cut(p.Output(), ": leading as Lease holder ")
	if !ok {
		return ""
	}
	holder, _, _ := strings.Cut(as, ":")
	return holder
}

// leader waits until one of the replicas leads and returns it and the
// other.
func leader(t testing.TB, a, b *selfhost.Process) (lead, other *selfhost.Process) {
	t.Helper()
	waitFor(t, "a replica to lead", func(context.Context) (bool, error) { return leadsAs(a) != "" || leadsAs(b) != "", nil })
	if leadsAs(a) != "" {
		return a, b
	}
	return b, a
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
	a, b := e.startReplica(t, "controller-a", ns, shortLease), e.startReplica(t, "controller-b", ns, shortLease)
	lead, other := leader(t, a, b)
	before := e.leaseHolder(t, ns)

	// Frozen, the leader holds the Lease and signs nothing: the CSRs
	// are pending when it dies.
	must(t, lead.Cmd.Process.Signal(syscall.SIGSTOP))
	names := f.submitNodeCSRs(t, e.agent(t, v1alpha1.NodeUser("etcd-node-1")), "etcd-node-1", "failover")
	lead.Kill(t)

	for _, name := range names {
		csr := answered(t, e.Client, name)
		ok, _ := condition(csr, certificatesv1.CertificateApproved)
		if len(csr.Status.Certificate) == 0 || !strings.Contains(ok.Message, fmt.Sprintf("/%d: ", other.PID())) {
			t.Errorf("CSR %s: approval %q, certificate %d bytes; want signed by the surviving replica (pid %d)", name, ok.Message, len(csr.Status.Certificate), other.PID())
		}
	}
	if after := e.leaseHolder(t, ns); after == before || after != leadsAs(other) || before != leadsAs(lead) {
		t.Errorf("Lease holder %q before, %q after; the replicas said they lead as %q (killed) and %q", before, after, leadsAs(lead), leadsAs(other))
	}
}

// BenchmarkFailover measures, with the default lease settings, the time
// from kill -9 of the leading replica to every pending CSR signed by the
// other (the bound: the lease duration plus 5 s).
func BenchmarkFailover(b *testing.B) {
	e := startEnv(b)
	l := lease{DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod}
	var total, worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := e.namespace(b)
		f := e.newFixture(b, ns, parseSpec(b, kubeSpec))
		r1, r2 := e.startReplica(b, "controller-a", ns, l), e.startReplica(b, "controller-b", ns, l)
		lead, _ := leader(b, r1, r2)
		// Signing works before the kill; then the leader stops mid-work.
		warm := f.submitNodeCSRs(b, e.agent(b, v1alpha1.NodeUser("etcd-node-2")), "etcd-node-2", fmt.Sprintf("warm-%d", i))
		for _, n := range warm {
			answered(b, e.Client, n)
		}
		must(b, lead.Cmd.Process.Signal(syscall.SIGSTOP))
		names := f.submitNodeCSRs(b, e.agent(b, v1alpha1.NodeUser("etcd-node-1")), "etcd-node-1", fmt.Sprintf("kill-%d", i))
		b.StartTimer()
		start := time.Now()
		lead.Kill(b)
		for _, n := range names {
			answered(b, e.Client, n)
		}
		took := time.Since(start)
		total, worst = total+took, max(worst, took)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-failover")
	b.ReportMetric(worst.Seconds(), "s-failover-max")
	b.ReportMetric(l.duration.Seconds(), "s-lease")
}
