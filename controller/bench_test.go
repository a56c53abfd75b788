package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// signBatch is how many CSRs each round of BenchmarkSignerThroughput
// submits at once: a 3-member cluster's whole renewal (server, peer and
// healthcheck of each member, and the apiserver's) several times over.
const signBatch = 50

// BenchmarkSignerThroughput submits batches of exact CSRs from many
// agents at once to one controller (in this process, as the identity
// deploy/controller-rbac.yaml binds) and reports CSRs signed per second,
// from the first submission to the last certificate.
func BenchmarkSignerThroughput(b *testing.B) {
	e := startEnv(b)
	ns := e.namespace(b)
	f := e.newFixture(b, ns, parseSpec(b, kubeSpec))
	e.runController(b, ns, time.Hour)
	agent := e.agent(b, v1alpha1.NodeUser("etcd-node-1"))
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reqs := make([]request, signBatch)
		for j := range reqs {
			reqs[j], _ = f.honest(b, "etcd-node-1/etcd-server")
			reqs[j].name = fmt.Sprintf("bench-%d-%d", i, j)
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(reqs))
		for j, r := range reqs {
			wg.Go(func() { errs[j] = agent.Create(context.Background(), r.csr()) })
		}
		wg.Wait()
		for _, err := range errs {
			must(b, err)
		}
		for _, r := range reqs {
			if csr := answered(b, e.Client, r.name); len(csr.Status.Certificate) == 0 {
				b.Fatalf("CSR %s not signed: %+v", r.name, csr.Status.Conditions)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(signBatch*b.N)/total.Seconds(), "CSRs/s")
}
