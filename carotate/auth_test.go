package carotate_test

import (
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestCARotateWithAuthOn runs a whole CA rotation on a cluster whose
// auth is on: its restarts hand leadership away (root only) with a root
// client minted from whichever CA the members accept at that stage, and
// its proofs and health gates pass with the probe certificate, which
// etcd knows as no user. Afterwards a root client from the new CA
// administers the cluster and auth is still on.
func TestCARotateWithAuthOn(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, etcdtest.Options{Name: "caauth", FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		on := true
		f.Auth.Enabled = &on
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: "true"})
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcdauth.Sync(ctx, admin, c.Spec); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	res := runCA(t, c.Spec, carotate.Options{})
	handOffs := 0
	for _, st := range res.Stages {
		handOffs += len(st.HandOffs)
	}
	if handOffs == 0 {
		t.Errorf("no leadership hand-off in the rotation's restarts")
	}
	after, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	live, err := etcdauth.Live(ctx, after)
	if err != nil || !live.Enabled {
		t.Errorf("after the CA rotation, as root from the new CA: auth on %v, %v", live.Enabled, err)
	}
}
