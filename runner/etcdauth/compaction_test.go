package etcdauth_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestCompactionWithAuthOn pins the two facts the auth design rests on
// for compaction, against the real etcd: a client without the root role
// is refused KV.Compact (etcdauth.APIServerAdminRPCs), and etcd's own
// periodic compactor (auto-compaction-mode, -retention in
// etcd.conf.yml) still compacts with auth on, as it asks no user's
// permission. So with auth on, either the apiserver's user holds root or
// etcd compacts and the apiserver runs with --etcd-compaction-interval=0.
func TestCompactionWithAuthOn(t *testing.T) {
	c := etcdtest.New(t, etcdtest.Options{Name: "compact", Members: 1, Edit: withBackup})
	f, err := os.OpenFile(c.Members[0].ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("auto-compaction-mode: periodic\nauto-compaction-retention: \"2s\"\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx := ctxFor(t, 2*time.Minute)
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := etcdauth.Sync(ctx, c.Client(t), c.Spec); err != nil {
		t.Fatal(err)
	}
	api := c.Client(t)
	var last int64
	for i := range 5 {
		r, err := api.Put(ctx, "/registry/configmaps/default/c", strings.Repeat("x", i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	if _, err := api.Compact(ctx, last); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the apiserver's user compacted without the root role (%v): etcdauth.APIServerAdminRPCs is out of date", err)
	}
	rootCrt, rootKey := signClient(t, c, cluster.RootUser)
	root := clientAs(t, c, rootCrt, rootKey)
	for {
		_, err := root.Get(ctx, "/registry/configmaps/default/c", clientv3.WithRev(1))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("etcd's periodic compactor did not compact with auth on (last read of revision 1: %v)", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
