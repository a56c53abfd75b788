package etcdauth_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// etcdRetention is how much history etcd's own periodic compactor keeps
// in the apiserver tests: with a retention under an hour etcd compacts
// every retention period, so 5 s gives a compaction cycle every 5 s.
const etcdRetention = "5s"

// apiserverRun is kube-apiserver on a 3-member cluster whose access
// control etcdauth.Sync applied from the spec.
type apiserverRun struct {
	etcd *etcdtest.Cluster
	root *clientv3.Client
	kube *kubetest.Env
	log  *etcdtest.Buffer
}

// startAuthedAPIServer starts a 3-member cluster (etcd compacting itself
// every retention when it is not ""), applies the spec's access control
// with etcdauth.Sync as root, checks that the apiserver's user got its
// grants and not the root role, and starts kube-apiserver v1.37.2 on it
// with its own certificate and --etcd-compaction-interval=interval.
func startAuthedAPIServer(ctx context.Context, t *testing.T, retention, interval string, bookkeeping bool) *apiserverRun {
	t.Helper()
	c := etcdtest.New(t, etcdtest.Options{Name: "apiauth", Edit: func(f *etcdtest.SpecFile) { on := true; f.Auth.Enabled = &on }})
	if retention != "" {
		for _, m := range c.Members {
			setConfig(t, m.ConfigFile, "auto-compaction-mode", "periodic")
			setConfig(t, m.ConfigFile, "auto-compaction-retention", fmt.Sprintf("%q", retention))
		}
	}
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	rootCrt, rootKey := signClient(t, c, cluster.RootUser)
	root := clientAs(t, c, rootCrt, rootKey)
	if _, err := etcdauth.Sync(ctx, root, c.Spec); err != nil {
		t.Fatal(err)
	}
	live, err := etcdauth.Live(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	api := ca.KindAPIServer.CommonName
	if d := etcdauth.Diff(live, etcdauth.Desired(c.Spec)); len(d) != 0 || !live.Enabled {
		t.Fatalf("after Sync the cluster differs from the spec: %v (auth on: %v)", d, live.Enabled)
	}
	if slices.Contains(live.Users[api], cluster.RootUser) {
		t.Fatalf("the apiserver's user %s holds the root role: %v", api, live.Users[api])
	}
	if bookkeeping {
		// Beyond the spec: the key the apiserver's compactor keeps its
		// bookkeeping in, so that its compaction gets as far as
		// KV.Compact and the refusal pinned is that call's.
		for _, role := range live.Users[api] {
			if _, err := root.RoleGrantPermission(ctx, role, "compact_rev_key", "", clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := &etcdtest.Buffer{}
	inv := c.Inventory()
	b, _ := inv.Bundle(cluster.ClientAPIServer)
	tg, _ := inv.Target(ca.KindAPIServer.Name)
	kube := kubetest.Start(t,
		func(e *envtest.Environment) {
			e.ControlPlane.GetAPIServer().Out, e.ControlPlane.GetAPIServer().Err = log, log
		},
		kubetest.WithEtcd(strings.Join(c.Spec.ClientEndpoints(), ","), b.CAPath(), tg.CertPath(), tg.KeyPath()),
		kubetest.WithArg("etcd-compaction-interval", interval))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log:\n%s", log.String())
		}
	})
	return &apiserverRun{etcd: c, root: root, kube: kube, log: log}
}

// setConfig sets key in an etcd.conf.yml: the line that sets it is
// replaced, or one is added (etcdpki may come to write these keys
// itself).
func setConfig(t *testing.T, path, key, value string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
	lines = append(lines, key+": "+value)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// compactRevision is etcd's compaction revision, read on the wire: a
// watch from revision 1 is cancelled with it once anything was
// compacted (0 while nothing was). Every write to etcd is a revision, so
// the watch's first answer comes at once either way.
func compactRevision(ctx context.Context, root *clientv3.Client) (int64, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for resp := range root.Watch(wctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(1)) {
		if resp.CompactRevision > 0 {
			return resp.CompactRevision, nil
		}
		if err := resp.Err(); err != nil {
			return 0, err
		}
		return 0, nil
	}
	return 0, fmt.Errorf("the watch from revision 1 answered nothing: %w", wctx.Err())
}

// permissionErrors are the lines of the apiserver's log in which etcd
// refused it something.
func permissionErrors(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "permission denied") || strings.Contains(line, "PermissionDenied") {
			out = append(out, line)
		}
	}
	return out
}

// TestAPIServerWithAuthWhileEtcdCompacts is the first Done-when,
// in the mode etcdpki runs kube-apiserver with auth on: its user holds
// only what etcdauth.Desired gives it (no root role, which KV.Compact
// would need), etcd compacts itself every 5 s (auto-compaction-mode
// periodic) and the apiserver runs with --etcd-compaction-interval=0.
// Over at least three compaction cycles, seen on the wire as etcd's
// compaction revision advancing three times, ConfigMaps are created,
// read, updated and listed while one watch follows every write
// (selfhost.APILoad: each failed request, a watch that breaks and a write
// the watch never delivers are failures); no request fails, the
// apiserver's log holds no etcd permission error, and a ConfigMap
// written through the apiserver reads back, through it and from etcd.
func TestAPIServerWithAuthWhileEtcdCompacts(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	r := startAuthedAPIServer(ctx, t, etcdRetention, "0", false)
	ns := r.kube.Namespace(t, "compacted")
	cms := kubernetesClient(t, r.kube).CoreV1().ConfigMaps(ns)
	load := selfhost.StartAPILoad(t, r.kube.Config, ns)

	first, err := compactRevision(ctx, r.root)
	if err != nil {
		t.Fatal(err)
	}
	revs := []int64{first}
	for advances := 0; advances < compactions; {
		if ctx.Err() != nil {
			t.Fatalf("etcd's compaction revision advanced %d times before the deadline (%v), want %d", advances, revs, compactions)
		}
		time.Sleep(time.Second)
		// A list of everything, each round: a quorum read through the
		// apiserver, straight to etcd.
		if _, err := cms.List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("list ConfigMaps: %v", err)
		}
		rev, err := compactRevision(ctx, r.root)
		if err != nil {
			t.Fatal(err)
		}
		if rev < revs[len(revs)-1] {
			t.Fatalf("etcd's compaction revision went back from %d to %d", revs[len(revs)-1], rev)
		}
		if rev > revs[len(revs)-1] {
			revs = append(revs, rev)
			advances++
		}
	}
	t.Logf("etcd's compaction revision: %v", revs)
	load.Stop().CheckClean(t)

	want := map[string]string{"written": "through the apiserver"}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "readback"}, Data: want}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ConfigMap readback: %v", err)
	}
	got, err := cms.Get(ctx, "readback", metav1.GetOptions{})
	if err != nil || got.Data["written"] != want["written"] {
		t.Errorf("ConfigMap readback reads back %v (%v), want %v", got.Data, err, want)
	}
	kv, err := r.root.Get(ctx, "/registry/configmaps/"+ns+"/readback")
	if err != nil || len(kv.Kvs) != 1 || !strings.Contains(string(kv.Kvs[0].Value), want["written"]) {
		t.Errorf("etcd holds no ConfigMap readback under /registry/ with its data (%v)", err)
	}
	if lines := permissionErrors(r.log.String()); len(lines) > 0 {
		t.Errorf("kube-apiserver's log has %d etcd permission errors; the first: %s", len(lines), lines[0])
	}
}

// TestAPIServerCompactionNeedsRoot pins the reason for the mode above:
// kube-apiserver compacting itself (--etcd-compaction-interval=10s) as
// the user etcdauth.Desired gives it (no root role) is refused, its log
// says so, and nothing is compacted. If a future etcd lets a user
// without root compact, this test fails, and the apiserver may go back
// to compacting (and etcdauth.APIServerAdminRPCs is out of date).
func TestAPIServerCompactionNeedsRoot(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	r := startAuthedAPIServer(ctx, t, "", "10s", true)
	cms := kubernetesClient(t, r.kube).CoreV1().ConfigMaps(r.kube.Namespace(t, "compacting"))
	var refused string
	for i := 0; refused == ""; i++ {
		if ctx.Err() != nil {
			t.Fatalf("no compaction refusal in kube-apiserver's log before the deadline: a user without the root role may compact now (etcdauth.APIServerAdminRPCs is out of date)")
		}
		// Writes, so that every interval has a revision to compact to.
		name := fmt.Sprintf("cm-%d", i)
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		for _, line := range permissionErrors(r.log.String()) {
			if strings.Contains(line, "KV/Compact") {
				refused = line
				break
			}
		}
		time.Sleep(time.Second)
	}
	t.Logf("kube-apiserver: %s", refused)
	if rev, err := compactRevision(ctx, r.root); err != nil || rev != 0 {
		t.Errorf("etcd's compaction revision is %d (%v), want 0: something compacted although the apiserver was refused", rev, err)
	}
	for _, line := range permissionErrors(r.log.String()) {
		if !strings.Contains(line, "KV/Compact") && !strings.Contains(line, "compact.go") {
			t.Errorf("a permission error beside the compaction: %s", line)
		}
	}
}

func kubernetesClient(t *testing.T, e *kubetest.Env) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
