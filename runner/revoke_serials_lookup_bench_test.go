package runner

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
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

// addIssued writes n one-off certificates of the PKI's CA into
// PKI/issued (as etcdpki issue keeps them) and returns their serials in
// the order a walk of the tree finds them.
func addIssued(b *testing.B, inv *pki.Inventory, n int) []string {
	b.Helper()
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		b.Fatal(err)
	}
	var serials []string
	for i := range n {
		pair, err := authority.ProbeWithSerial(big.NewInt(int64(1_000_000+i)), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		d := filepath.Join(inv.Spec.PKIDir, "issued", fmt.Sprintf("b%04d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "client.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o644); err != nil {
			b.Fatal(err)
		}
		c, _ := x509.ParseCertificate(pair.Certificate[0])
		serials = append(serials, certx.Serial(c))
	}
	return serials
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
	serials := addIssued(b, inv, n)
	return inv, serials[n-k:]
}
