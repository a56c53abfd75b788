package revoke

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
)

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
	serials := addIssued(b, pki.New(c.Spec), 2000)
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
