package rotate

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

// manyBundles is a PKI with n one-off certificates in PKI/issued, each
// with its key, and the serials of the last k (the walk finds them last).
func manyBundles(b *testing.B, n, k int) (*pki.Inventory, []string) {
	b.Helper()
	dir := b.TempDir()
	s, err := cluster.Parse([]byte("name: bench\nlocal: true\nnodes:\n  - {name: etcd-1, ips: [127.0.0.1]}\n"), "", cluster.Options{PKIDir: filepath.Join(dir, "pki")})
	if err != nil {
		b.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{}); err != nil {
		b.Fatal(err)
	}
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
		d := filepath.Join(s.PKIDir, "issued", fmt.Sprintf("b%04d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "client.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o644); err != nil {
			b.Fatal(err)
		}
		if i >= n-k {
			c, _ := x509.ParseCertificate(pair.Certificate[0])
			serials = append(serials, certx.Serial(c))
		}
	}
	return inv, serials
}
