package livetest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// AddIssued writes n one-off certificates of the PKI's CA into
// PKI/issued (as etcdpki issue keeps them) and returns their serials in
// the order a walk of the tree finds them.
func AddIssued(b testing.TB, inv *pki.Inventory, n int) []string {
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
