package auth_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/auth"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// withAuth turns auth on in the spec and adds the extra client backup
// with readwrite on /backup/ and read on the key /config/leader.
func withAuth(f *etcdtest.SpecFile) {
	on := true
	f.Auth.Enabled = &on
	f.Clients = append(f.Clients, cluster.FileClient{Name: "backup", Permissions: []cluster.FilePermission{
		{Prefix: "/backup/", Access: "readwrite"}, {Key: "/config/leader", Access: "read"},
	}})
}

// live is the cluster's access control read as root (a client minted in
// memory from the CA, as auth apply's own).
func live(ctx context.Context, t *testing.T, c *etcdtest.Cluster) etcdauth.State {
	t.Helper()
	cli, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	st, err := etcdauth.Live(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestApplyUnderLoad: auth apply on a live 3-member cluster while the
// apiserver's certificate writes and reads: no request fails, every
// acknowledged write reads back, auth ends on with the spec's users and
// roles, every certificate is proven permitted and refused, and a second
// run changes nothing. A dry run before it printed the same changes and
// left the cluster's access control as it was.
func TestApplyUnderLoad(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: "authload", Edit: withAuth})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv := pki.New(c.Spec)

	before := live(ctx, t, c)
	var dry bytes.Buffer
	dres, err := auth.Apply(ctx, inv, auth.Options{DryRun: true, Out: &dry})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, dry.String())
	}
	if after := live(ctx, t, c); !reflect.DeepEqual(before, after) {
		t.Errorf("the dry run changed the cluster's access control:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := strings.Count(dry.String(), "\nwould ") + 1; len(dres.Changes) == 0 || n != len(dres.Changes) {
		t.Errorf("dry run printed %d change lines for %d changes:\n%s", n, len(dres.Changes), dry.String())
	}

	ld := livetest.StartLoad(t, c)
	time.Sleep(300 * time.Millisecond) // the load is under way before auth changes
	var out bytes.Buffer
	res, err := auth.Apply(ctx, inv, auth.Options{Out: &out})
	time.Sleep(300 * time.Millisecond) // and keeps going after
	st := ld.Stop()
	t.Logf("auth apply:\n%s", out.String())
	if err != nil {
		t.Fatalf("auth apply: %v", err)
	}
	if strings.Contains(out.String(), "warning:") {
		t.Errorf("a warning although the configs have auto-compaction")
	}
	for _, f := range st.Failures {
		t.Errorf("failed request from the apiserver's certificate during auth apply: %s", f)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if !reflect.DeepEqual(res.Changes, dres.Changes) {
		t.Errorf("applied %v\nthe dry run said %v", res.Changes, dres.Changes)
	}
	if got := live(ctx, t, c); !got.Enabled || len(etcdauth.Diff(got, etcdauth.Desired(c.Spec))) != 0 {
		t.Errorf("after auth apply: enabled %v, left %v", got.Enabled, etcdauth.Diff(got, etcdauth.Desired(c.Spec)))
	}
	if len(res.Proofs) != len(inv.Targets) {
		t.Errorf("%d proofs for %d certificates", len(res.Proofs), len(inv.Targets))
	}
	for _, p := range res.Proofs {
		if p.Err != nil || p.Permitted == "" || p.Refused == "" {
			t.Errorf("proof %s", p)
		}
	}
	if n := strings.Count(out.String(), "proof ok: "); n != len(inv.Targets) {
		t.Errorf("%d proof lines for %d certificates", n, len(inv.Targets))
	}
	again, err := auth.Apply(ctx, inv, auth.Options{Out: &out})
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("second run: %v (%v), want no change", again.Changes, err)
	}
}

// TestProofCatchesAGrantBeyondTheSpec: a grant added by hand to an
// etcdpki role shows up as a failed proof (the certificate reads what
// the spec does not give it) until auth apply takes it away.
func TestProofCatchesAGrantBeyondTheSpec(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: "authextra", Members: 1, Edit: withAuth})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inv := pki.New(c.Spec)
	if _, err := auth.Apply(ctx, inv, auth.Options{}); err != nil {
		t.Fatal(err)
	}
	cli, err := runner.New(inv, runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	role := etcdauth.RoleFor("backup")
	if _, err := cli.RoleGrantPermission(ctx, role, "/registry/", clientv3.GetPrefixRangeEnd("/registry/"), clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	var bad bool
	for _, p := range etcdauth.Prove(ctx, inv, etcdauth.Desired(c.Spec)) {
		if p.Target == "client/backup" {
			bad = p.Err != nil && strings.Contains(p.Err.Error(), "reads more than the spec grants")
		}
	}
	if !bad {
		t.Error("the proof did not see backup reading /registry/ beyond its grants")
	}
	var out bytes.Buffer
	res, err := auth.Apply(ctx, inv, auth.Options{Out: &out})
	if err != nil || len(res.Changes) != 1 || res.Changes[0].Op != etcdauth.RevokeAccess {
		t.Errorf("auth apply after the hand-made grant: %v (%v)\n%s", res.Changes, err, out.String())
	}
}
