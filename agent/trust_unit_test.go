package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// The trust ConfigMap's ca.crt is the host's trust anchor for every
// client and peer it accepts, and a ConfigMap is writable by more
// identities than the CA Secret: a bundle that adds a CA the host does
// not trust yet is installed only when it is the CA rotation's new CA
// (status.caRotation.newCA, the rotation under way); anything else is
// refused and ca.crt stays as it was. A fresh bundle takes the cluster's
// trust, as a join does.
func TestTrustConfigMapCannotAddAForeignCA(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := "name: t\npkiDir: " + filepath.Join(dir, "pki") + "\nnodes:\n  - {name: n1, ips: [127.0.0.1]}\n"
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	b, _ := inv.Bundle("n1")
	h, err := NewHost(inv, "n1", b.Root)
	if err != nil {
		t.Fatal(err)
	}
	current, err := pki.ReadStored(h.Bundle.CADir, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte{}, current...), foreign.CertPEM...)
	a := &Agent{Host: h}
	for _, rot := range []*v1alpha1.CARotationStatus{
		nil,
		{ID: "r1", Stage: v1alpha1.CAStageTrustBoth, NewCA: "abcdef"},
		{ID: "r1", Stage: v1alpha1.CAStageDone, NewCA: certx.Serial(foreign.Cert)},
	} {
		_, err := a.InstallCABundle(both, rot)
		if err == nil || !strings.Contains(err.Error(), "nor status.caRotation.newCA of a rotation under way; refusing it") {
			t.Errorf("rotation %+v: err = %v", rot, err)
		}
		if got, _ := pki.ReadStored(h.Bundle.CADir, pki.CAFile); !bytes.Equal(got, current) {
			t.Fatalf("rotation %+v: ca.crt changed", rot)
		}
	}
	rot := &v1alpha1.CARotationStatus{ID: "r1", Stage: v1alpha1.CAStageTrustBoth, NewCA: certx.Serial(foreign.Cert)}
	if changed, err := a.InstallCABundle(both, rot); err != nil || !changed {
		t.Fatalf("the rotation's new CA: changed %v, %v", changed, err)
	}
	// A fresh host takes the cluster's trust.
	fresh, err := NewHost(inv, "n1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := (&Agent{Host: fresh}).InstallCABundle(current, nil); err != nil || !changed {
		t.Errorf("a fresh bundle: changed %v, %v", changed, err)
	}
}

// A joining host has no trust yet and takes the ConfigMap's, but not
// blindly: each CA in ca.crt must have signed the CRL beside it (the
// cluster's CA does; a CA a ConfigMap writer added did not), or be the
// old or new CA of the CA rotation under way. Refused, nothing is
// written.
func TestSeedTrustTakesOnlyTheCRLSignerOrTheRotationsCAs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := "name: t\npkiDir: " + filepath.Join(dir, "pki") + "\nnodes:\n  - {name: n1, ips: [127.0.0.1]}\n"
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	b, _ := inv.Bundle("n1")
	current, err := pki.ReadStored(b.CADir, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.ReadStored(b.CADir, pki.CRLFile)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte{}, current...), foreign.CertPEM...)
	fresh := func() *Agent {
		h, err := NewHost(inv, "n1", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return &Agent{Host: h}
	}
	for _, rot := range []*v1alpha1.CARotationStatus{nil, {ID: "r1", Stage: v1alpha1.CAStageDone, NewCA: certx.Serial(foreign.Cert)}} {
		a := fresh()
		_, err := a.SeedTrust(both, crl, rot)
		if err == nil || !strings.Contains(err.Error(), "did not sign the CRL beside it and is not a CA of the rotation under way; refusing both") {
			t.Errorf("rotation %+v: err = %v", rot, err)
		}
		if cas, _ := pki.BundleCAs(a.Bundle.CADir); len(cas) != 0 {
			t.Errorf("rotation %+v: refused, yet ca.crt written", rot)
		}
	}
	if seeded, err := fresh().SeedTrust(current, crl, nil); err != nil || !seeded {
		t.Errorf("the cluster's CA and CRL: %v %v", seeded, err)
	}
	rot := &v1alpha1.CARotationStatus{ID: "r1", Stage: v1alpha1.CAStageTrustBoth, NewCA: certx.Serial(foreign.Cert)}
	if seeded, err := fresh().SeedTrust(both, crl, rot); err != nil || !seeded {
		t.Errorf("trust-both during a rotation: %v %v", seeded, err)
	}
}
