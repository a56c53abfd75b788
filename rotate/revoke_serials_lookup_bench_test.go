package rotate

import (
	"testing"

	"github.com/etcdpki/etcdpki/pki"
)

// BenchmarkRevokeSerialLookups: what a revoke of 20 serials does to find
// them among 2,000 issued certificates: tie each to the CA (the check)
// and find the pair the proof presents.
//
//	go test -run '^$' -bench RevokeSerialLookups -benchtime 3x ./rotate/
func BenchmarkRevokeSerialLookups(b *testing.B) {
	inv, serials := manyBundles(b, 2000, 20)
	authority, _ := pki.LoadCA(inv.Paths)
	for b.Loop() {
		idx, err := indexSerials(inv.Spec.PKIDir)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range serials {
			if _, err := idx.issuedHere(inv.Spec.PKIDir, s, authority); err != nil {
				b.Fatal(err)
			}
			if _, err := idx.revokedPair(inv.Spec.PKIDir, s, authority); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(len(serials)), "s/serial")
}
