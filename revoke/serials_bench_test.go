package revoke

import (
	"context"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"io"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
)

// BenchmarkRevokeManySerials revokes 20 serials in one run on a real
// 3-member cluster whose PKI keeps 2,000 issued certificates: the checks,
// one CRL, one deploy and the proof that every port refuses each serial.
// Each iteration takes 20 serials not revoked yet, from the end of the
// walk.
//
//	go test -run '^$' -bench RevokeManySerials -benchtime 3x ./revoke/
func BenchmarkRevokeManySerials(b *testing.B) {
	const perRun = 20
	c := etcdtest.Start(b, etcdtest.Options{FromEnv: true})
	serials := livetest.AddIssued(b, pki.New(c.Spec), 2000)
	next := len(serials)
	for b.Loop() {
		if next < perRun {
			b.Fatal("out of serials")
		}
		batch := serials[next-perRun : next]
		next -= perRun
		if _, err := Revoke(context.Background(), pki.New(c.Spec), Options{Serials: batch, Reason: "superseded", Out: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/perRun, "s/serial")
}
