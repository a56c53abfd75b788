//go:build cgo && !nopkcs11

package issue

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
)

// benchSpec is the three-node example with the CA key in a file, or in a
// fresh SoftHSM2 token.
func benchSpec(b *testing.B, home, pkiDir string) *cluster.Spec {
	b.Helper()
	o := cluster.Options{PKIDir: pkiDir}
	if home == "token" {
		o.CAKey = softhsm.New(b, "etcd").URI("etcd-ca")
	}
	s, err := cluster.Load("../examples/three-node.yaml", o)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkCAKeyInit is init of the three-node example (CA, 11 leaves,
// configs, all fsynced) with the CA key in a file and in a token: the
// token run makes its key in the token (a fresh token each time) and has
// the token make every signature.
func BenchmarkCAKeyInit(b *testing.B) {
	for _, home := range []string{"file", "token"} {
		b.Run(home, func(b *testing.B) {
			base := b.TempDir()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				pkiDir := filepath.Join(base, "pki")
				if err := os.RemoveAll(pkiDir); err != nil {
					b.Fatal(err)
				}
				s := benchSpec(b, home, pkiDir)
				b.StartTimer()
				if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCAKeyRenewAll is certs renew --all on the three-node example
// (11 new keys and certificates, backups, atomic switches) with the CA
// key in a file and in a token.
func BenchmarkCAKeyRenewAll(b *testing.B) {
	for _, home := range []string{"file", "token"} {
		b.Run(home, func(b *testing.B) {
			s := benchSpec(b, home, filepath.Join(b.TempDir(), "pki"))
			if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
				b.Fatal(err)
			}
			targets := pki.New(s).Targets
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := Renew(context.Background(), pki.New(s), targets, RenewOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
