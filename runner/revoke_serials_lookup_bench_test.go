package runner

import (
	"context"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"

	"github.com/etcdpki/etcdpki/pki"
)

// BenchmarkRevokeSerialLookups: what a revoke of 20 serials does to find
// them among 2,000 issued certificates: tie each to the CA (the check)
// and find the pair the proof presents.
//
//	go test -run '^$' -bench RevokeSerialLookups -benchtime 3x ./runner/
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

// manyBundles is a PKI with n one-off certificates in PKI/issued and the
// serials of the last k (a walk finds them last).
func manyBundles(b *testing.B, n, k int) (*pki.Inventory, []string) {
	b.Helper()
	s, err := cluster.Parse([]byte("name: bench\nlocal: true\nnodes:\n  - {name: etcd-1, ips: [127.0.0.1]}\n"), "", cluster.Options{PKIDir: filepath.Join(b.TempDir(), "pki")})
	if err != nil {
		b.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{}); err != nil {
		b.Fatal(err)
	}
	serials := livetest.AddIssued(b, inv, n)
	return inv, serials[n-k:]
}
