package issue

import (
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// TestCARotationStageFromTheFiles walks a tree through the stages of a CA
// rotation by hand and checks that the stage is read from the files alone
// (the next CA, the CAs each bundle holds, the CA that signed each leaf)
// and that certs list stays usable at every step, saying the stage.
func TestCARotationStageFromTheFiles(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	stage := func(want string) *pki.CARotation {
		t.Helper()
		r, err := pki.ReadCARotation(pki.New(s))
		if err != nil {
			t.Fatal(err)
		}
		if r.Stage != want {
			t.Fatalf("stage %q, want %q", r.Stage, want)
		}
		infos, err := pki.List(pki.New(s), 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			if in.Status != pki.StatusOK {
				t.Errorf("stage %q: %s is %s: %s", want, in.Name, in.Status, in.Reason)
			}
			if want != "" && in.Target != nil && in.Reason != "CA rotation in progress, stage "+want {
				t.Errorf("stage %q: %s says %q", want, in.Name, in.Reason)
			}
		}
		return r
	}
	bundles := func(data []byte) {
		t.Helper()
		seen := map[string]bool{}
		for _, tg := range pki.New(s).Targets {
			if seen[tg.CADir] {
				continue
			}
			seen[tg.CADir] = true
			if _, err := atomicdir.Update(tg.CAStore(), []atomicdir.File{{Name: "ca.crt", Data: data, Mode: atomicdir.CertMode}}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	stage("")
	next, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atomicdir.Update(p.NextCAStore(), []atomicdir.File{{Name: "ca.crt", Data: next.CertPEM, Mode: atomicdir.CertMode},
		{Name: "ca.key", Data: next.KeyPEM, Mode: atomicdir.CAKeyMode}}, nil); err != nil {
		t.Fatal(err)
	}
	r := stage(pki.CAStagePrepare)
	// Without the rotation's authority, renew and init refuse: they would
	// write bundles with the old CA alone.
	if _, err := Renew(context.Background(), pki.New(s), pki.New(s).Targets, RenewOptions{}); err == nil {
		t.Error("certs renew ran during a CA rotation")
	}
	if _, err := Init(context.Background(), pki.New(s), Options{}); err == nil {
		t.Error("init ran during a CA rotation")
	}
	bundles(r.BundlePEM(pki.CAStageTrustBoth))
	stage(pki.CAStageTrustBoth)
	// One leaf from the new CA is enough to be in reissue; a bundle
	// trusting only the old CA beside it would be invalid.
	if _, err := Renew(context.Background(), pki.New(s), pki.New(s).Targets[:1], RenewOptions{Authority: next, BundleCA: r.BundlePEM(pki.CAStageReissue)}); err != nil {
		t.Fatal(err)
	}
	stage(pki.CAStageReissue)
	if _, err := Renew(context.Background(), pki.New(s), pki.New(s).Targets[1:], RenewOptions{Authority: next, BundleCA: r.BundlePEM(pki.CAStageReissue)}); err != nil {
		t.Fatal(err)
	}
	stage(pki.CAStageReissue)
	bundles(r.BundlePEM(pki.CAStageFinish))
	stage(pki.CAStageFinish)
	// PKI/etcd switched, PKI/etcd-next not yet removed: still finish.
	if _, err := atomicdir.Update(p.CAStore(), []atomicdir.File{{Name: "ca.crt", Data: next.CertPEM, Mode: atomicdir.CertMode},
		{Name: "ca.key", Data: next.KeyPEM, Mode: atomicdir.CAKeyMode}}, nil); err != nil {
		t.Fatal(err)
	}
	stage(pki.CAStageFinish)
	if err := atomicdir.RemoveAll(p.NextCADir()); err != nil {
		t.Fatal(err)
	}
	stage("")
}
