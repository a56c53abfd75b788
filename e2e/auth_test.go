package e2e

import (
	"context"
	"crypto/x509"
	"maps"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// startAuthOn is the self-hosted setup with etcd's access control on, as
// docs/auth.md runs it: the spec's auth.enabled (so the members compact
// themselves, from etcd.env), the apiserver with
// --etcd-compaction-interval=0, and the users and roles applied with
// etcdauth.Sync as a root minted in memory from the CA. It returns that
// root client, for the checks.
func startAuthOn(t *testing.T, ctx context.Context) (*selfhost.Env, *clientv3.Client) {
	t.Helper()
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod", FromEnv: true,
		Edit:      func(f *etcdtest.SpecFile) { on := true; f.Auth.Enabled = &on },
		APIServer: []kubetest.Option{kubetest.WithArg("etcd-compaction-interval", "0")}})
	authority, err := pki.LoadCA(e.Inventory.Paths)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := etcdauth.RootClientTLS(authority, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: e.Etcd.Endpoints(), TLS: cfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if _, err := etcdauth.Sync(ctx, root, e.Spec); err != nil {
		t.Fatalf("etcdauth.Sync: %v", err)
	}
	live, err := etcdauth.Live(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if d := etcdauth.Diff(live, etcdauth.Desired(e.Spec)); len(d) != 0 || !live.Enabled {
		t.Fatalf("after Sync the cluster differs from the spec: %v (auth on: %v)", d, live.Enabled)
	}
	return e, root
}

// authRefusesNodeCerts checks that auth is in force: a member's server
// certificate (no etcd user) is refused a read of the keys the apiserver
// stores.
func authRefusesNodeCerts(t *testing.T, ctx context.Context, e *selfhost.Env) {
	t.Helper()
	tg, ok := e.Inventory.Target(nodeTarget(e, 0, "etcd-server"))
	if !ok {
		t.Fatal("no server target")
	}
	h := holdPair(t, e, tg.ID)
	authority, err := pki.LoadCA(e.Inventory.Paths)
	if err != nil {
		t.Fatal(err)
	}
	cfg := probe.ClientConfig(probe.CertPool([]*x509.Certificate{authority.Cert}), &h.pair)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Etcd.Endpoints(), TLS: cfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Get(rctx, "/registry/", clientv3.WithPrefix()); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s read /registry/ with auth on: %v, want permission denied", tg.ID, err)
	}
}

// TestSelfHostedLifecycleWithAuthOn is issue 29's "revocation and
// membership keep working with auth on", through the controller and the
// agents (the CLI's paths have their own tests): on the self-hosted setup
// with etcd's access control applied and both loads running,
//   - `rotate --kubeconfig --all` renews every certificate through the
//     agents and proves each (the agents' proofs read with certificates
//     that have no etcd user, which auth refuses);
//   - `certs revoke --kubeconfig` revokes the apiserver's client
//     certificate and a peer certificate, both in use: the controller
//     proves the refusal and the saved pairs are refused on every port;
//   - a 4th member joins by starting its agent (the controller's
//     MemberAdd and promote are root's alone with auth on).
//
// No request fails, no member restarts, the apiserver's log has no etcd
// permission error and auth stays on with the spec's grants.
func TestSelfHostedLifecycleWithAuthOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	e, root := startAuthOn(t, ctx)
	authRefusesNodeCerts(t, ctx, e)
	r := startEtcdpki(t, e)
	pids := e.Pids()
	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)

	// Renewal through the agents.
	before := e.CheckServed(t)
	rot := selfhost.StartEtcdpki(t, "rotate", "rotate", "--kubeconfig", r.admin, "--namespace", r.ns,
		"--cluster", e.Spec.Name, "--all", "--timeout", "5m")
	if code := rot.Wait(t, 6*time.Minute); code != 0 {
		t.Fatalf("rotate --kubeconfig --all with auth on exited %d:\n%s", code, rot.Output())
	}
	for node, s := range e.CheckServed(t) {
		if s.Server == before[node].Server || s.Peer == before[node].Peer {
			t.Errorf("%s serves %+v, as before the rotation (%+v)", node, s, before[node])
		}
	}

	// Revocation through the controller.
	targets := []string{"apiserver-etcd-client", nodeTarget(e, 1, "etcd-peer")}
	r.waitReported(t, ctx, targets...)
	held := []heldPair{holdPair(t, e, targets[0]), holdPair(t, e, targets[1])}
	rev := r.revoke(t, "revoke", append([]string{"--reason", "keyCompromise"}, targets...)...)
	if code := rev.Wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("certs revoke --kubeconfig with auth on exited %d:\n%s", code, rev.Output())
	}
	for _, h := range held {
		checkRefused(t, e, h)
	}
	ec := r.cluster(t, ctx)
	for _, h := range held {
		if st, ok := ec.Status.Revocation(h.serial); !ok || !st.Enforced || st.ProvenAt == nil {
			t.Errorf("status.revocations of %s: %+v, want enforced with provenAt", h.id, st)
		}
	}
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(t)
	as.CheckClean(t)
	if got := e.Pids(); !maps.Equal(got, pids) {
		t.Errorf("member pids %v, were %v: renewal and revocation restart nothing", got, pids)
	}

	// A 4th member joins through its agent.
	etcdLoad = e.StartEtcdLoad(t)
	m4, node := r.Etcd.JoinNode(t, nil)
	r.NodeDirs[m4.Name] = r.Etcd.Paths.NodeDir(m4.Name)
	r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
		s.Nodes = append(s.Nodes, v1alpha1.NodeSpec{Name: node.Name, IPs: node.IPs, ClientPort: node.ClientPort, PeerPort: node.PeerPort,
			Restart: node.Restart, DataDir: m4.DataDir})
	})
	r.agents[m4.Name] = selfhost.StartEtcdpki(t, "agent-"+m4.Name, r.AgentArgs(t, m4.Name, r.AgentKubeconfig(t, m4.Name), r.ns)...)
	r.waitMembers(t, ctx, m4.Name+" a voter with its certificates proven", func(ec *v1alpha1.EtcdCluster) bool {
		n := 0
		for _, c := range ec.Status.Certificates {
			if c.Owner == m4.Name && c.InEffect {
				n++
			}
		}
		return n == 3 && votersAre(ec, "etcd-1", "etcd-2", "etcd-3", m4.Name)
	})
	etcdLoad.Stop().CheckClean(t)
	if voters, learners := etcdMembers(t, e); len(voters) != 4 || len(learners) != 0 {
		t.Errorf("after the join: voters %v, learners %v", voters, learners)
	}
	after := e.Pids()
	for name, pid := range pids {
		if after[name] != pid {
			t.Errorf("member %s pid %d -> %d: the join restarted it", name, pid, after[name])
		}
	}
	ec = r.cluster(t, ctx)
	if c := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("Degraded %s: %s", c.Reason, c.Message)
	}

	// Auth stayed on, with the spec's grants, and the apiserver was never
	// refused.
	live, err := etcdauth.Live(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if d := etcdauth.Diff(live, etcdauth.Desired(e.Etcd.Spec)); len(d) != 0 || !live.Enabled {
		t.Errorf("after the lifecycle the cluster's access control differs from the spec: %v (auth on: %v)", d, live.Enabled)
	}
	if lines := permissionErrors(e.APIServerLog.String()); len(lines) > 0 {
		t.Errorf("kube-apiserver's log has %d etcd permission errors; the first: %s", len(lines), lines[0])
	}
	noPrivateKeys(t, r)
}

// permissionErrors are the apiserver's log lines where etcd refused it.
func permissionErrors(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "permission denied") || strings.Contains(line, "PermissionDenied") {
			out = append(out, line)
		}
	}
	return out
}
