package carotate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
)

// TestCARotateWithTheCAKeyInAToken runs all four stages of ca rotate on a
// real cluster whose CA key is in a token: the next CA's key is made in
// the same token, the old key is retired by relabelling (never deleted)
// and named so in the backup, the new key takes the spec's label, and no
// file under the PKI holds either key.
func TestCARotateWithTheCAKeyInAToken(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	c := etcdtest.Start(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		f.CA.Key = tk.URI("etcd-ca")
		f.Certs.Validity = "2h"
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: "true"})
	}})
	spec := c.Spec
	old, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	runCA(t, spec, carotate.Options{})
	now, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	if now.Cert.Equal(old.Cert) || certx.KeyMatches(now.Cert, old.Cert.PublicKey) {
		t.Fatal("the CA in effect is still the old one, or has its key")
	}
	if !now.InToken() || now.Token.Object != "etcd-ca" {
		t.Fatalf("the new CA's key is %s, want the token under the spec's label", now.KeyWhere("ca.key"))
	}
	d, err := ca.DescribeTokenKey(now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Label != "etcd-ca" || d.Extractable || !d.Sensitive {
		t.Errorf("new CA key in the token: %+v", d)
	}
	backup := filepath.Join(spec.PKIDir, "backup", "ca-"+certx.Serial(old.Cert))
	certPEM, err := os.ReadFile(filepath.Join(backup, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	uri, err := os.ReadFile(filepath.Join(backup, ca.KeyURIFile))
	if err != nil {
		t.Fatalf("the old CA's backup does not name its token key: %v", err)
	}
	retired, err := ca.ParseStore(certPEM, nil, uri, "backup ca.crt", "", "backup ca.key.uri")
	if err != nil {
		t.Fatalf("the retired CA cannot be opened from its backup: %v", err)
	}
	d, err = ca.DescribeTokenKey(retired)
	if err != nil {
		t.Fatal(err)
	}
	if want := ca.RetiredLabel("etcd-ca", old.Cert.SerialNumber.Text(16)); d.Label != want || retired.Token.Object != want || d.Extractable {
		t.Errorf("retired key %+v named %q in the backup; want label %q", d, retired.Token.Object, want)
	}
	if holders := livetest.CAKeyHolders(t, spec); len(holders) != 0 {
		t.Errorf("files under the PKI hold the new CA's key: %v", holders)
	}
	infos, err := pki.List(pki.New(spec), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Status != pki.StatusOK || (i.Name != "etcd-ca" && i.CA != now.Cert.Subject.CommonName) {
			t.Errorf("%s: %s %s (CA %s)", i.Name, i.Status, i.Reason, i.CA)
		}
	}
	// On the wire: the run proved each stage (its proofs are in its
	// output above); once more here, every port serves a leaf the new CA
	// alone verifies, under the kube-apiserver's new certificate.
	tlsCfg, err := etcdtest.TLSConfig(c.CAFile(), filepath.Join(spec.PKIDir, "apiserver", "apiserver-etcd-client.crt"), filepath.Join(spec.PKIDir, "apiserver", "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range spec.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, _ := probe.ParseEndpoint(u)
			if _, err := probe.ServingCert(context.Background(), addr, tlsCfg); err != nil {
				t.Errorf("%s: %v", addr, err)
			}
		}
	}
}
