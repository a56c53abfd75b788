package adopt_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubeadmcerts"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestAdoptWithAuthOn: adopting a kubeadm cluster with a spec that turns
// auth on applies it, root client minted from the adopted CA, auth
// enabled last, and every certificate whose key the PKI now holds is
// proven permitted and refused (etcd-3's, held on its host or missing,
// are skipped).
func TestAdoptWithAuthOn(t *testing.T) {
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{})
	c.Spec.Auth = cluster.Auth{Enabled: true, Set: true}
	var out bytes.Buffer
	o := adopt.Options{
		CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key"),
		NodeDirs:   map[string]string{"etcd-1": c.NodePKI(1), "etcd-2": filepath.Join(c.NodePKI(2), "etcd")},
		ClientDirs: map[string]string{cluster.ClientAPIServer: c.APIServerPKI},
		Out:        &out,
	}
	_, err := adopt.Run(context.Background(), pki.New(c.Spec), o)
	t.Logf("adopt:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "[auth] enable auth\n") {
		t.Errorf("adopt's last line is not enabling auth")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	live, err := etcdauth.Live(ctx, cli)
	if err != nil || !live.Enabled || len(etcdauth.Diff(live, etcdauth.Desired(c.Spec))) != 0 {
		t.Errorf("after adopt: %+v %v", live, err)
	}
}
