package livetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/pki"
)

// AppendCA writes node's bundle ca.crt as its CA plus another one, as the
// first stage of a CA rotation would: the bytes etcd reads at start
// change.
func AppendCA(t *testing.T, s *cluster.Spec, node string) {
	t.Helper()
	dir := pki.Paths{PKI: s.PKIDir}.NodeCertDir(node)
	cur, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	other := testpki.NewCA(t, "next-etcd-ca")
	data := append(append([]byte(nil), cur...), other.CertPEM()...)
	if _, err := atomicdir.Update(atomicdir.Store{Dir: dir, Name: node}, []atomicdir.File{{Name: "ca.crt", Data: data, Mode: atomicdir.CertMode}}, nil); err != nil {
		t.Fatal(err)
	}
}
