package rotate_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestRotateWithAuthOn renews every certificate and restarts every
// member of a cluster whose auth is on, under the apiserver's load: the
// health gates and proofs run with the probe certificate (no etcd user:
// permission denied still went through consensus) and the leader's
// hand-off, which etcd allows only root, with the run's root client
// minted in memory.
func TestRotateWithAuthOn(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, etcdtest.Options{Name: "rotateauth", Edit: func(f *etcdtest.SpecFile) {
		on := true
		f.Auth.Enabled = &on
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := etcdauth.Sync(ctx, admin, c.Spec); err != nil {
		t.Fatal(err)
	}
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	res, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: &out})
	st := ld.Stop()
	t.Logf("rotate:\n%s", out.String())
	if err != nil {
		t.Fatalf("rotate with auth on: %v", err)
	}
	if len(res.Tally.Members) != len(c.Members) || len(res.Tally.HandOffs) != 1 {
		t.Errorf("restarted %d members with %d hand-offs, want %d and 1", len(res.Tally.Members), len(res.Tally.HandOffs), len(c.Members))
	}
	dropped, other := livetest.Classify(windows(res.Tally.HandOffs), st.Failures)
	for _, f := range other {
		t.Errorf("failed request from the apiserver's certificate: %s", f)
	}
	for _, f := range dropped {
		t.Logf("dropped in the hand-off: %s", f)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if live, err := etcdauth.Live(ctx, admin); err != nil || !live.Enabled {
		t.Errorf("auth after the rotation: %+v %v", live.Enabled, err)
	}
}
