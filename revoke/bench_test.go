package revoke_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/revoke"
)

// BenchmarkRevoke revokes client/etcd-admin on a 3-member cluster under
// the load of BenchmarkRoll (the kube-apiserver stand-in), each iteration
// a full revoke: renew, deploy, prove the replacement, publish the CRL,
// prove every member refuses the old serial on its client and peer port.
// Reported: ms-publish-to-refused/op, from the start of the CRL's write
// until all 6 ports refused (goal: under 300 ms on loopback), the proof
// alone, the whole revoke, and failed client requests (goal: 0).
//
//	go test -run '^$' -bench Revoke -benchtime 20x ./revoke/
func BenchmarkRevoke(b *testing.B) {
	c := livetest.RevokeCluster(b)
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"client/etcd-admin"})
	var effect, proof, total time.Duration
	var fails, ops int64
	var worst time.Duration
	for b.Loop() {
		ld := livetest.StartLoad(b, c)
		var out bytes.Buffer
		res, err := revoke.Revoke(context.Background(), pki.New(c.Spec), revoke.Options{Targets: targets, Force: true, Out: &out})
		st := ld.Stop()
		if err != nil {
			b.Fatalf("revoke: %v\n%s", err, out.String())
		}
		effect += res.Effect
		proof += res.Refused
		total += res.Took
		worst = max(worst, res.Effect)
		fails += st.Fails
		ops += st.Ops
	}
	n := float64(b.N)
	b.ReportMetric(float64(effect.Microseconds())/1000/n, "ms-publish-to-refused/op")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-publish-to-refused-max")
	b.ReportMetric(float64(proof.Microseconds())/1000/n, "ms-proof/op")
	b.ReportMetric(total.Seconds()/n, "s-total/op")
	b.ReportMetric(float64(fails)/n, "failed-requests/op")
	b.ReportMetric(float64(ops)/n, "requests/op")
}
