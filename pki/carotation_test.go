package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
)

// TestBundleCAsAndSigner reads a two-CA bundle (as a CA rotation's
// trust-both stage writes it) and tells which CA signed a leaf, by
// signature, though both CAs share a name.
func TestBundleCAsAndSigner(t *testing.T) {
	spec := cluster.CA{CommonName: "etcd-ca", Key: cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}, Validity: time.Hour}
	oldCA, err := ca.Create(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := ca.Create(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := Bundle{Owner: "n1", Node: true, Root: dir, CADir: dir}
	if err := os.WriteFile(b.CAPath(), bytes.Join([][]byte{oldCA.CertPEM, newCA.CertPEM}, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	cas, err := b.CAs()
	if err != nil || len(cas) != 2 {
		t.Fatalf("CAs: %d %v", len(cas), err)
	}
	leafPEM, _, err := newCA.Sign(ca.Request{Kind: ca.KindClient, CommonName: "x", Key: cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(leafPEM)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SignedBy(leaf, cas)
	if err != nil || !got.Equal(cas[1]) {
		t.Fatalf("SignedBy = %v, %v; want the new CA", got, err)
	}
	if _, err := SignedBy(leaf, cas[:1]); !errors.Is(err, ErrNoSigner) {
		t.Fatalf("old CA only: %v, want ErrNoSigner", err)
	}
	if _, err := ReadCAs(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file read without error")
	}
}
