package etcdauth_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestKilledAtAnyStepConverges stops the first run after each of its
// changes in turn (as a kill would): the cluster is never left with auth
// on and no root, and a second run from that point reaches the spec.
func TestKilledAtAnyStepConverges(t *testing.T) {
	probe := etcdtest.Start(t, etcdtest.Options{Name: "plan", Members: 1, Edit: withBackup})
	ctx := ctxFor(t, 5*time.Minute)
	live, err := etcdauth.Live(ctx, probe.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	plan := etcdauth.Diff(live, etcdauth.Desired(probe.Spec))
	for k := range len(plan) {
		t.Run(fmt.Sprintf("after %d of %d", k, len(plan)), func(t *testing.T) {
			c := etcdtest.Start(t, etcdtest.Options{Name: "kill", Members: 1, Edit: withBackup})
			if err := etcdauth.Apply(ctx, c.Client(t), plan[:k]); err != nil {
				t.Fatal(err)
			}
			rootCrt, rootKey := signClient(t, c, cluster.RootUser)
			root := clientAs(t, c, rootCrt, rootKey)
			mid, err := etcdauth.Live(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			if mid.Enabled && !slices.Contains(mid.Users[cluster.RootUser], cluster.RootUser) {
				t.Fatalf("auth is on with no root after %v", plan[:k])
			}
			if _, err := etcdauth.Sync(ctx, root, c.Spec); err != nil {
				t.Fatal(err)
			}
			end, err := etcdauth.Live(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			if d := etcdauth.Diff(end, etcdauth.Desired(c.Spec)); len(d) != 0 || !end.Enabled {
				t.Errorf("second run left %v (auth on: %v)", d, end.Enabled)
			}
		})
	}
}

func withBackup(f *etcdtest.SpecFile) {
	on := true
	f.Auth.Enabled = &on
	f.Clients = append(f.Clients, cluster.FileClient{Name: "backup", Permissions: []cluster.FilePermission{
		{Prefix: "/backup/", Access: "readwrite"}, {Key: "/config/leader", Access: "read"},
	}})
}
