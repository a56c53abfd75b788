package etcdauth_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// loadPrefix is where the load writes: under kube-apiserver's prefix,
// the only place its certificate may write once auth is on.
const loadPrefix = cluster.APIServerPrefix + "etcdpki-load/"

// apiLoad works a cluster with the apiserver's certificate as the
// apiserver does: each worker puts a key of its own, reads it back with
// a linearizable get, updates it in a transaction guarded by its
// revision (the apiserver's GuaranteedUpdate), and now and then writes
// one with a lease (its events); one watch from before the first write
// must deliver every acknowledged write and never be cancelled. Every
// request that returns an error is a failure.
type apiLoad struct {
	cli    *clientv3.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ops    atomic.Int64

	mu       sync.Mutex
	failures []string
	acked    map[string]ackedWrite
	seen     map[string]int64 // the newest revision the watch delivered
	watchEnd chan struct{}
}

type ackedWrite struct {
	val string
	rev int64
}

// loadWorkers is how many goroutines drive the load, one request in
// flight each.
const loadWorkers = 3

func startAPILoad(t *testing.T, c *etcdtest.Cluster) *apiLoad {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.APIServerTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	l := &apiLoad{cli: cli, cancel: cancel, acked: map[string]ackedWrite{}, seen: map[string]int64{}, watchEnd: make(chan struct{})}
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), loadPrefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp := <-wch; resp.Err() != nil || !resp.Created {
		t.Fatalf("the load's watch: %v", resp.Err())
	}
	go l.watch(ctx, wch)
	for w := range loadWorkers {
		l.wg.Go(func() { l.work(ctx, w) })
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *apiLoad) watch(ctx context.Context, wch clientv3.WatchChan) {
	defer close(l.watchEnd)
	for resp := range wch {
		if err := resp.Err(); err != nil || resp.Canceled {
			if ctx.Err() == nil {
				l.fail("watch", fmt.Errorf("the watch ended: %v", err))
			}
			return
		}
		l.mu.Lock()
		for _, ev := range resp.Events {
			k := string(ev.Kv.Key)
			l.seen[k] = max(l.seen[k], ev.Kv.ModRevision)
		}
		l.mu.Unlock()
	}
	if ctx.Err() == nil {
		l.fail("watch", fmt.Errorf("the watch channel closed"))
	}
}

func (l *apiLoad) work(ctx context.Context, w int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := fmt.Sprintf("%s%d/%d", loadPrefix, w, i%16)
		val := fmt.Sprint(i)
		var rev int64
		if !l.do("put", func(rctx context.Context) error {
			var opts []clientv3.OpOption
			if i%10 == 0 {
				lease, err := l.cli.Grant(rctx, 600)
				if err != nil {
					return fmt.Errorf("lease grant: %w", err)
				}
				opts = append(opts, clientv3.WithLease(lease.ID))
			}
			resp, err := l.cli.Put(rctx, key, val, opts...)
			if err == nil {
				rev = resp.Header.Revision
			}
			return err
		}) {
			continue
		}
		l.ack(key, val, rev)
		l.do("get", func(rctx context.Context) error {
			resp, err := l.cli.Get(rctx, key)
			if err == nil && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != val) {
				return fmt.Errorf("get %s after its put of %q returned %v", key, val, resp.Kvs)
			}
			return err
		})
		val += "-updated"
		if l.do("txn", func(rctx context.Context) error {
			resp, err := l.cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, val)).Commit()
			if err == nil && !resp.Succeeded {
				return fmt.Errorf("guarded update of %s at revision %d did not apply: someone else wrote it", key, rev)
			}
			if err == nil {
				rev = resp.Header.Revision
			}
			return err
		}) {
			l.ack(key, val, rev)
		}
	}
}

func (l *apiLoad) do(op string, req func(context.Context) error) bool {
	// The apiserver's own etcd request timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.ops.Add(1)
	err := req(ctx)
	if err != nil {
		l.fail(op, err)
	}
	return err == nil
}

func (l *apiLoad) fail(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf("%s at %s: %v", op, time.Now().Format("15:04:05.000"), err))
}

func (l *apiLoad) ack(key, val string, rev int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[key] = ackedWrite{val: val, rev: rev}
}

// waitOps waits until the load has made n more requests than it had,
// bounded by ctx: the steps below must each happen under load.
func (l *apiLoad) waitOps(ctx context.Context, t *testing.T, n int64) {
	t.Helper()
	target := l.ops.Load() + n
	for l.ops.Load() < target {
		if ctx.Err() != nil {
			t.Fatalf("the load made %d requests of the %d awaited before the deadline", l.ops.Load(), target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// missed are the acknowledged writes the watch has not delivered.
func (l *apiLoad) missed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, a := range l.acked {
		if l.seen[k] < a.rev {
			out = append(out, fmt.Sprintf("%s at revision %d (the watch's newest: %d)", k, a.rev, l.seen[k]))
		}
	}
	return out
}

// stop ends the writers and gives the watch up to a minute to deliver
// the last acknowledged writes; it returns the requests made and the
// failures, a write the watch never delivered among them.
func (l *apiLoad) stop() (int64, []string) {
	l.cancel()
	l.wg.Wait()
	<-l.watchEnd
	return l.ops.Load(), l.failures
}

// TestSyncUnderLoad applies the spec's access control with etcdauth.Sync
// to a live 3-member cluster while a load runs with the apiserver's
// certificate, three times: the first run turns auth on, the second
// changes grants with auth on (each change bumps etcd's auth revision,
// which refuses requests admitted before it: the client must retry
// them), the third changes nothing. No request of the load may fail, its
// watch must deliver every acknowledged write, and every value it wrote
// last must read back; afterwards auth is on and the apiserver's
// certificate is refused outside its prefix, so the load really ran
// across the switch.
func TestSyncUnderLoad(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: "authload", Edit: withBackup})
	ctx := ctxFor(t, 10*time.Minute)
	rootCrt, rootKey := signClient(t, c, cluster.RootUser)
	root := clientAs(t, c, rootCrt, rootKey)
	l := startAPILoad(t, c)

	// A spec with another client, and backup's key taken back: the second
	// run adds a role and a user, grants, and revokes with auth on.
	changed := *c.Spec
	changed.Clients = slices.Clone(c.Spec.Clients)
	for i := range changed.Clients {
		if changed.Clients[i].Name == "backup" {
			changed.Clients[i].Permissions = changed.Clients[i].Permissions[:1]
		}
	}
	changed.Clients = append(changed.Clients, cluster.Client{Name: "metrics", CommonName: "metrics",
		Permissions: []cluster.Permission{{Key: "/metrics/", Prefix: true, Access: cluster.AccessRead}}})

	const between = 300 // requests of the load before, between and after the runs
	var steps [][]etcdauth.Change
	for _, s := range []*cluster.Spec{c.Spec, &changed, &changed} {
		l.waitOps(ctx, t, between)
		changes, err := etcdauth.Sync(ctx, root, s)
		if err != nil {
			t.Fatalf("Sync under load: %v", err)
		}
		steps = append(steps, changes)
	}
	l.waitOps(ctx, t, between)
	if len(steps[0]) == 0 || steps[0][len(steps[0])-1].Op != etcdauth.EnableAuth || len(steps[1]) == 0 || len(steps[2]) != 0 {
		t.Errorf("the runs changed %v, want auth enabled first, grants changed next, then nothing", steps)
	}
	t.Logf("changes under load: %v", steps)

	deadline := time.Now().Add(time.Minute)
	for len(l.missed()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	missed := l.missed()
	ops, failures := l.stop()
	t.Logf("load: %d requests, %d failed", ops, len(failures))
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-i)
			break
		}
		t.Errorf("failed request from the apiserver's certificate: %s", f)
	}
	for _, m := range missed {
		t.Errorf("the load's watch never delivered %s", m)
	}
	checkLoadReadsBack(ctx, t, root, l)
	refused(ctx, t, "apiserver get outside its prefix after the runs", c.Client(t), get("/backup/x"))
}

// checkLoadReadsBack reads every key the load wrote, as root, and
// compares it with the last acknowledged write.
func checkLoadReadsBack(ctx context.Context, t *testing.T, root *clientv3.Client, l *apiLoad) {
	t.Helper()
	resp, err := root.Get(ctx, loadPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(l.acked) == 0 {
		t.Fatal("the load had no write acknowledged: it proves nothing")
	}
	var lost []string
	for k, a := range l.acked {
		if got[k] != a.val {
			lost = append(lost, fmt.Sprintf("%s=%q reads back %q", k, a.val, got[k]))
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d of %d acknowledged writes do not read back: %s", len(lost), len(l.acked), strings.Join(lost, "; "))
	}
}
