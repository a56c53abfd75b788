package e2e

import (
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

// BenchmarkRotateThroughAgents is the end-to-end figure: from `etcdpki
// rotate --kubeconfig --all` stamping the request to every certificate of
// a 3-member cluster (server, peer and healthcheck of each member, and
// kube-apiserver's client certificate) renewed by its agent through a
// CSR, signed by the leading controller and proven on the wire; one
// rotation per op, on the self-hosted setup with both loads running.
func BenchmarkRotateThroughAgents(b *testing.B) {
	e := selfhost.Start(b, selfhost.Options{Name: "etcd-prod"})
	r := startEtcdpki(b, e)
	etcdLoad, apiLoad := e.StartEtcdLoad(b), e.StartAPILoad(b)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rot := selfhost.StartEtcdpki(b, "rotate", "rotate", "--kubeconfig", r.admin, "--namespace", r.ns,
			"--cluster", e.Spec.Name, "--all", "--timeout", "5m")
		if code := rot.Wait(b, 6*time.Minute); code != 0 {
			b.Fatalf("rotate --kubeconfig --all exited %d:\n%s", code, rot.Output())
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/rotation")
	b.StopTimer()
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(b)
	as.CheckClean(b)
}
