package e2e

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

func TestMain(m *testing.M) { selfhost.Main(m) }

// short lease settings so that a failover happens within a test.
var leaseFlags = []string{"--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"}

// running is the self-hosted setup with etcdpki on it: the PKI exported,
// two controller replicas, an agent per node and one for kube-apiserver.
type running struct {
	*selfhost.Env
	ns          string
	admin       string
	controllers []*selfhost.Process
	agents      map[string]*selfhost.Process
	// controllerKC is the controller replicas' kubeconfig, extra the
	// flags they were started with beyond ControllerArgs and leaseFlags.
	controllerKC string
	extra        []string
	// ctrlArgs are the replicas' whole arguments, for a test that starts
	// a replica again (carotate_test.go's supervise).
	ctrlArgs []string
	// replicas, when set, lists the running replicas instead of
	// controllers (supervise starts exited ones again).
	replicas func() []*selfhost.Process
	// killed are the replicas the test killed: supervise leaves them.
	killed sync.Map
}

// startEtcdpki exports the PKI and starts two controller replicas and the
// agents; extra are more controller flags after leaseFlags (another
// --namespace; lease flags given again, the last value wins).
func startEtcdpki(t testing.TB, e *selfhost.Env, extra ...string) *running {
	t.Helper()
	// The namespace and cluster name deploy/controller-rbac.yaml is
	// written for, so that it applies as shipped; the controller runs as
	// the service account it binds, each agent as its own identity.
	r := &running{Env: e, ns: e.Kube.Namespace(t, "etcd-system"), admin: e.Kube.AdminKubeconfig(t), agents: map[string]*selfhost.Process{}}
	e.Kube.Apply(t, "deploy/controller-rbac.yaml", r.ns)
	e.Kube.Apply(t, "deploy/agent-rbac.yaml", r.ns)
	controller, _ := e.Kube.AddUser(t, "system:serviceaccount:"+r.ns+":etcdpki-controller", "system:serviceaccounts", "system:serviceaccounts:"+r.ns)
	out := selfhost.Etcdpki(t, "export", "--spec", e.SpecPath, "--kubeconfig", r.admin, "--namespace", r.ns)
	if b, err := out.CombinedOutput(); err != nil {
		t.Fatalf("etcdpki export: %v\n%s", err, b)
	}
	r.controllerKC, r.extra = controller, extra
	r.ctrlArgs = append(append(selfhost.ControllerArgs(controller, r.ns), leaseFlags...), extra...)
	for i := range 2 {
		args := r.ctrlArgs
		r.controllers = append(r.controllers, selfhost.StartEtcdpki(t, "controller-"+string(rune('1'+i)), args...))
	}
	for node := range e.NodeDirs {
		r.agents[node] = selfhost.StartEtcdpki(t, "agent-"+node, e.AgentArgs(t, node, e.AgentKubeconfig(t, node), r.ns)...)
	}
	r.agents["kube-apiserver"] = selfhost.StartEtcdpki(t, "agent-kube-apiserver", e.AgentArgs(t, "kube-apiserver", e.AgentKubeconfig(t, "kube-apiserver"), r.ns)...)
	return r
}

// leader is the controller replica holding the Lease.
func (r *running) leader(t testing.TB, ctx context.Context) (*selfhost.Process, string) {
	t.Helper()
	for ctx.Err() == nil {
		holder, err := r.LeaseHolder(ctx, r.ns)
		if err == nil && holder != "" {
			cs := r.controllers
			if r.replicas != nil {
				cs = r.replicas()
			}
			for _, c := range cs {
				if strings.Contains(c.Output(), holder) {
					return c, holder
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no controller replica holds the Lease")
	return nil, ""
}

func (r *running) cluster(t testing.TB, ctx context.Context) *v1alpha1.EtcdCluster {
	t.Helper()
	var ec v1alpha1.EtcdCluster
	if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &ec); err != nil {
		t.Fatal(err)
	}
	return &ec
}

// TestSelfHostedRotateThroughAgents is the self-hosted test: the
// apiserver runs on the managed cluster under load on etcd and through
// the apiserver; `etcdpki rotate --kubeconfig --all` renews every
// certificate through the agents while the leading controller is killed
// -9. Every member serves new serials from the same pid, no request
// failed, and the Lease moved.
func TestSelfHostedRotateThroughAgents(t *testing.T) {
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod"})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := startEtcdpki(t, e)
	before := e.CheckServed(t)
	files := map[string]string{}
	for _, tg := range e.Inventory.Targets {
		s, err := e.TargetSerial(tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		files[tg.ID] = s
	}
	pids := e.Pids()
	leader, holder := r.leader(t, ctx)

	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)
	rot := selfhost.StartEtcdpki(t, "rotate", "rotate", "--kubeconfig", r.admin, "--namespace", r.ns,
		"--cluster", e.Spec.Name, "--all", "--timeout", "5m")
	// Kill the leader in the middle: once the first certificate is
	// renewed and before the last is.
	if pending := len(e.Inventory.Targets) - r.waitRenewed(t, ctx, 1); pending == 0 {
		t.Fatal("every certificate was renewed before the leader could be killed: nothing tests the failover")
	}
	leader.Kill(t)
	if code := rot.Wait(t, 6*time.Minute); code != 0 {
		t.Fatalf("rotate --kubeconfig --all exited %d:\n%s", code, rot.Output())
	}
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(t)
	as.CheckClean(t)

	after := e.CheckServed(t)
	for node, s := range after {
		if s.Server == before[node].Server || s.Peer == before[node].Peer {
			t.Errorf("%s serves %+v, as before the rotation (%+v)", node, s, before[node])
		}
	}
	for _, tg := range e.Inventory.Targets {
		if s, _ := e.TargetSerial(tg.ID); s == files[tg.ID] {
			t.Errorf("%s: serial %s unchanged", tg.ID, s)
		}
	}
	if got := e.Pids(); !maps.Equal(got, pids) {
		t.Errorf("member pids %v, were %v: a renewal restarts nothing", got, pids)
	}
	if now, _ := r.LeaseHolder(ctx, r.ns); now == holder || now == "" {
		t.Errorf("Lease holder %q, was %q: the other replica should have taken over", now, holder)
	}
	noPrivateKeys(t, r)
}

// waitRenewed waits until at least n certificates show a renewal after
// the request, and returns how many do.
func (r *running) waitRenewed(t *testing.T, ctx context.Context, n int) int {
	t.Helper()
	for ctx.Err() == nil {
		ec := r.cluster(t, ctx)
		req, err := ec.Requested()
		if err == nil && !req.At.IsZero() {
			renewed := 0
			for _, c := range ec.Status.Certificates {
				if c.RenewedAt != nil && !c.RenewedAt.Time.Before(req.At) {
					renewed++
				}
			}
			if renewed >= n {
				return renewed
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fewer than %d certificates renewed", n)
	return 0
}

// noPrivateKeys: no CSR, ConfigMap, EtcdCluster or Secret other than the
// CA's holds a private key.
func noPrivateKeys(t testing.TB, r *running) {
	t.Helper()
	ctx := context.Background()
	c := r.Kube.Client
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			if strings.Contains(string(v), "PRIVATE KEY") && (s.Name != v1alpha1.CASecretName(r.Spec.Name) || k != v1alpha1.SecretKey) {
				t.Errorf("Secret %s/%s key %s holds a private key", s.Namespace, s.Name, k)
			}
		}
	}
	checkNone(t, ctx, c)
}
