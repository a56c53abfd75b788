package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/pki"
)

// heldPair is a certificate in use, saved with its key before it is
// revoked: after the revocation the test presents the very pair.
type heldPair struct {
	id     string
	serial string
	pair   tls.Certificate
}

func holdPair(t testing.TB, e *selfhost.Env, id string) heldPair {
	t.Helper()
	tg, ok := e.Inventory.Target(id)
	if !ok {
		t.Fatalf("no target %s", id)
	}
	certPEM, keyPEM, err := pki.ReadTargetPair(tg)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return heldPair{id: id, serial: certx.Serial(pair.Leaf), pair: pair}
}

// presentEverywhere presents pair and its twin (the same certificate
// with another serial and key, signed by the CA now) on every member's
// client and peer port. Where a port refuses the twin too (etcd's peer
// port refuses a client certificate whose IP SANs do not name the
// address it is dialled from), a probe minted with the serial and its
// twin stand in. It returns, per port, whether the serial was refused
// and the control accepted, and what was seen.
func presentEverywhere(t testing.TB, e *selfhost.Env, h heldPair) (refused map[string]bool, seen []string) {
	t.Helper()
	authority, err := pki.LoadCA(e.Inventory.Paths)
	if err != nil {
		t.Fatal(err)
	}
	roots := probe.CertPool([]*x509.Certificate{authority.Cert})
	twin, err := authority.Twin(h.pair.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	minted, err := authority.ProbeWithSerial(h.pair.Leaf.SerialNumber, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mintedTwin, err := authority.Twin(minted.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refused = map[string]bool{}
	for _, n := range e.Spec.Nodes {
		c, p, err := e.Addrs(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{c, p} {
			port := n.Name + " " + addr
			revoked, control := h.pair, twin
			cv, err := probe.Present(ctx, addr, roots, control, 5*time.Second)
			if err == nil && !cv.Accepted {
				revoked, control = minted, mintedTwin
				cv, err = probe.Present(ctx, addr, roots, control, 5*time.Second)
			}
			rv, err2 := probe.Present(ctx, addr, roots, revoked, 5*time.Second)
			if err != nil || err2 != nil {
				t.Fatalf("%s: %v %v", port, err, err2)
			}
			refused[port] = cv.Accepted && !rv.Accepted
			seen = append(seen, fmt.Sprintf("%s: serial %s: %s; control: %s", port, pki.ShortSerial(h.serial), rv.How, cv.How))
		}
	}
	return refused, seen
}

// checkRefused fails t unless every port refuses h and accepts its
// control.
func checkRefused(t testing.TB, e *selfhost.Env, h heldPair) {
	t.Helper()
	refused, seen := presentEverywhere(t, e, h)
	for port, ok := range refused {
		if !ok {
			t.Errorf("%s (serial %s) not refused on %s:\n%s", h.id, h.serial, port, strings.Join(seen, "\n"))
		}
	}
	if len(refused) != 2*len(e.Spec.Nodes) {
		t.Errorf("%d ports checked, want %d", len(refused), 2*len(e.Spec.Nodes))
	}
}

// waitReported waits until the status reports every id in effect with
// the serial in its bundle: certs revoke resolves a target from it.
func (r *running) waitReported(t testing.TB, ctx context.Context, ids ...string) {
	t.Helper()
	for ctx.Err() == nil {
		var ec v1alpha1.EtcdCluster
		if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &ec); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, id := range ids {
			s, err := r.TargetSerial(id)
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := ec.Status.Certificate(id); ok && c.InEffect && c.Serial == s {
				done++
			}
		}
		if done == len(ids) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the status never reported %v in effect", ids)
}

// nodeTarget is the ID of the kind's certificate of the i-th node.
func nodeTarget(e *selfhost.Env, i int, kind string) string {
	return e.Spec.Nodes[i].Name + "/" + kind
}

func (r *running) revoke(t testing.TB, name string, args ...string) *selfhost.Process {
	t.Helper()
	return selfhost.StartEtcdpki(t, name, append([]string{"certs", "revoke", "--kubeconfig", r.admin, "--namespace", r.ns,
		"--cluster", r.Spec.Name, "--timeout", "4m"}, args...)...)
}

// brokenCluster is an EtcdCluster in a namespace of its own served by
// the same controllers, whose CA Secret is missing: it must stay
// Degraded without holding the healthy cluster back. The controller's
// Role is copied there, its Secret rule naming the missing Secret.
func brokenCluster(t testing.TB, r *running, ns string) *v1alpha1.EtcdCluster {
	t.Helper()
	ctx := context.Background()
	c := r.Kube.Client
	var role rbacv1.Role
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: "etcdpki-controller"}, &role); err != nil {
		t.Fatal(err)
	}
	rules := slices.Clone(role.Rules)
	for i := range rules {
		if slices.Contains(rules[i].Resources, "secrets") {
			rules[i].ResourceNames = []string{v1alpha1.CASecretName("etcd-broken")}
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name}, Rules: rules}))
	must(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "etcdpki-controller", Namespace: r.ns}}}))
	var healthy v1alpha1.EtcdCluster
	must(c.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &healthy))
	broken := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etcd-broken"}, Spec: *healthy.Spec.DeepCopy()}
	broken.Spec.Name = "etcd-broken"
	broken.Spec.Revocations = []v1alpha1.RevocationSpec{{Serial: "abc", Reason: "keyCompromise"}}
	must(c.Create(ctx, broken))
	return broken
}

// TestSelfHostedRevokeThroughController is the revocation test
// on the self-hosted setup (the apiserver on the managed cluster, both
// loads, two controller replicas serving two namespaces): `certs revoke
// --kubeconfig` revokes kube-apiserver's client certificate and a
// member's peer certificate, both in use, while the leading controller
// is killed -9 once the first is renewed. Their agents renew them, the
// controller publishes the CRL and proves the refusal; then the very
// pairs that were in use are refused on every client and peer port, the
// members keep their pids and no request failed. Beside it, a cluster
// whose CA Secret is missing stays Degraded and holds nothing back.
func TestSelfHostedRevokeThroughController(t *testing.T) {
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod", FromEnv: true})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	other := e.Namespace(t, "etcd-broken")
	r := startEtcdpki(t, e, "--namespace", other)
	broken := brokenCluster(t, r, other)
	targets := []string{"apiserver-etcd-client", nodeTarget(e, 1, "etcd-peer")}
	r.waitReported(t, ctx, targets...)
	held := []heldPair{holdPair(t, e, targets[0]), holdPair(t, e, targets[1])}
	for _, h := range held {
		if refused, seen := presentEverywhere(t, e, h); slices.Contains(slices.Collect(maps.Values(refused)), true) {
			t.Fatalf("%s refused before its revocation:\n%s", h.id, strings.Join(seen, "\n"))
		}
	}
	pids := e.Pids()
	leader, holder := r.leader(t, ctx)

	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)
	rev := r.revoke(t, "revoke", append([]string{"--reason", "keyCompromise"}, targets...)...)
	rev.WaitOutput(t, ctx, "renewed by its agent")
	leader.Kill(t)
	if code := rev.Wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("certs revoke --kubeconfig exited %d:\n%s", code, rev.Output())
	}
	t.Logf("certs revoke --kubeconfig:\n%s", rev.Output())
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(t)
	as.CheckClean(t)

	for _, h := range held {
		checkRefused(t, e, h)
		if s, _ := e.TargetSerial(h.id); s == h.serial {
			t.Errorf("%s still holds the revoked serial %s", h.id, s)
		}
	}
	e.CheckServed(t)
	if got := e.Pids(); !maps.Equal(got, pids) {
		t.Errorf("member pids %v, were %v: a revocation restarts nothing", got, pids)
	}
	if now, _ := r.LeaseHolder(ctx, r.ns); now == holder || now == "" {
		t.Errorf("Lease holder %q, was %q: the other replica should have taken over", now, holder)
	}
	ec := r.cluster(t, ctx)
	if c := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionRevoking); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Revoking condition %+v, want False once every revocation is enforced", c)
	}
	for _, h := range held {
		if st, ok := ec.Status.Revocation(h.serial); !ok || !st.Enforced || st.ProvenAt == nil {
			t.Errorf("status.revocations of %s: %+v, want enforced with provenAt", h.id, st)
		}
	}
	checkEvents(t, ctx, r, len(held))
	checkBroken(t, ctx, r, broken)
	noPrivateKeys(t, r)
}

// checkEvents wants an Event per enforced revocation, and one for the
// CRL published, on the EtcdCluster.
func checkEvents(t *testing.T, ctx context.Context, r *running, enforced int) {
	t.Helper()
	var l eventsv1.EventList
	if err := r.Kube.Client.List(ctx, &l, client.InNamespace(r.ns)); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range l.Items {
		if ev.Regarding.Name == r.Spec.Name {
			n[ev.Reason]++
		}
	}
	if n["RevocationEnforced"] < enforced || n["CRLPublished"] < 1 {
		t.Errorf("Events on the EtcdCluster by reason: %v; want %d RevocationEnforced and a CRLPublished", n, enforced)
	}
}

// checkBroken: the cluster without its CA Secret is Degraded for it, and
// its revocation waits, naming the Secret.
func checkBroken(t *testing.T, ctx context.Context, r *running, broken *v1alpha1.EtcdCluster) {
	t.Helper()
	var ec v1alpha1.EtcdCluster
	for ctx.Err() == nil {
		if err := r.Kube.Client.Get(ctx, client.ObjectKeyFromObject(broken), &ec); err != nil {
			t.Fatal(err)
		}
		d := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded)
		st, ok := ec.Status.Revocation("abc")
		if d != nil && d.Status == metav1.ConditionTrue && ok {
			if d.Reason != "CANotLoaded" || st.Enforced || !strings.Contains(st.Message, v1alpha1.CASecretName("etcd-broken")) {
				t.Errorf("broken cluster: Degraded %s (%s), revocation %+v; want CANotLoaded and the revocation waiting on its CA Secret", d.Reason, d.Message, st)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("the broken cluster never showed Degraded with its revocation waiting: %+v", ec.Status)
}

// killSteps are the points of a revocation at which the leader dies.
var killSteps = []string{"requested", "renewed", "published", "proving"}

// TestRevokeLeaderKilledAtARandomStep revokes a certificate in use and
// kills the leading controller -9 at a random step (the request in the
// spec, the renewal reported, the CRL published, the proof under way),
// starting a new replica in its place: the other replica finishes, and
// every member refuses the revoked pair. 5 trials, 1 with -short.
func TestRevokeLeaderKilledAtARandomStep(t *testing.T) {
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod", FromEnv: true})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	r := startEtcdpki(t, e)
	targets := []string{nodeTarget(e, 0, "etcd-healthcheck-client"), nodeTarget(e, 2, "etcd-peer"), nodeTarget(e, 0, "etcd-server"),
		"apiserver-etcd-client", nodeTarget(e, 1, "etcd-healthcheck-client")}
	steps := killSteps
	if testing.Short() {
		// One trial: at a step the proof cannot race past.
		targets, steps = targets[:1], killSteps[:2]
	}
	r.waitReported(t, ctx, targets...)
	pids := e.Pids()
	beforeEnforced := 0
	for i, id := range targets {
		h := holdPair(t, e, id)
		step := steps[rand.IntN(len(steps))]
		leader, _ := r.leader(t, ctx)
		rev := r.revoke(t, fmt.Sprintf("revoke-%d", i), id)
		r.waitStep(t, ctx, h, step)
		enforced := r.enforced(t, ctx, h.serial)
		leader.Kill(t)
		r.controllers = append(r.controllers, selfhost.StartEtcdpki(t, fmt.Sprintf("controller-%d", len(r.controllers)+1),
			append(append(selfhost.ControllerArgs(r.controllerKC, r.ns), leaseFlags...), r.extra...)...))
		if code := rev.Wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("trial %d (%s, leader killed at %s): certs revoke exited %d:\n%s", i, id, step, code, rev.Output())
		}
		checkRefused(t, e, h)
		if !enforced {
			beforeEnforced++
		}
		t.Logf("trial %d: %s, leader killed at step %s (enforced before the kill: %v); certs revoke exited 0 under the other replica", i, id, step, enforced)
	}
	if beforeEnforced == 0 {
		t.Errorf("every kill came after the revocation was enforced: no trial tested a takeover")
	}
	if got := e.Pids(); !maps.Equal(got, pids) {
		t.Errorf("member pids %v, were %v", got, pids)
	}
}

// waitStep waits until the revocation of h reached step.
func (r *running) waitStep(t *testing.T, ctx context.Context, h heldPair, step string) {
	t.Helper()
	for ctx.Err() == nil {
		ec := r.cluster(t, ctx)
		reached := false
		switch step {
		case "requested":
			reached = slices.ContainsFunc(ec.Spec.Revocations, func(s v1alpha1.RevocationSpec) bool { return s.Serial == h.serial })
		case "renewed":
			c, ok := ec.Status.Certificate(h.id)
			reached = ok && c.InEffect && c.Serial != h.serial
		case "published", "proving":
			reached = r.published(t, ctx, h.serial)
		}
		if reached {
			if step == "proving" {
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the revocation of %s never reached %s", h.id, step)
}

func (r *running) published(t *testing.T, ctx context.Context, serial string) bool {
	t.Helper()
	var cm corev1.ConfigMap
	if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: v1alpha1.TrustConfigMapName(r.Spec.Name)}, &cm); err != nil {
		t.Fatal(err)
	}
	l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.RevokedCertificateEntries {
		if fmt.Sprintf("%x", e.SerialNumber) == serial {
			return true
		}
	}
	return false
}

func (r *running) enforced(t *testing.T, ctx context.Context, serial string) bool {
	t.Helper()
	st, ok := r.cluster(t, ctx).Status.Revocation(serial)
	return ok && st.Enforced
}

// BenchmarkRevokeThroughController measures, on the self-hosted setup
// under both loads, the time from `certs revoke --kubeconfig` to the
// status showing the serial enforced (every member seen refusing it on
// its client and peer port): for a certificate in use (its agent renews
// it first, through a CSR the leader signs) and for a serial no longer
// in use (the CRL and the proof only).
func BenchmarkRevokeThroughController(b *testing.B) {
	e := selfhost.Start(b, selfhost.Options{Name: "etcd-prod", FromEnv: true})
	r := startEtcdpki(b, e)
	ctx := context.Background()
	inUse := []string{nodeTarget(e, 0, "etcd-healthcheck-client"), nodeTarget(e, 1, "etcd-peer"), "apiserver-etcd-client", nodeTarget(e, 2, "etcd-server")}
	r.waitReported(b, ctx, inUse...)
	etcdLoad, apiLoad := e.StartEtcdLoad(b), e.StartAPILoad(b)
	var target, serial time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := inUse[i%len(inUse)]
		b.StopTimer()
		r.waitReported(b, ctx, id)
		b.StartTimer()
		start := time.Now()
		if p := r.revoke(b, fmt.Sprintf("revoke-%d", i), id); p.Wait(b, 5*time.Minute) != 0 {
			b.Fatalf("certs revoke %s:\n%s", id, p.Output())
		}
		target += time.Since(start)
		start = time.Now()
		s := fmt.Sprintf("%x", rand.Uint64()|1<<62)
		if p := r.revoke(b, fmt.Sprintf("revoke-serial-%d", i), "--serial", s); p.Wait(b, 5*time.Minute) != 0 {
			b.Fatalf("certs revoke --serial %s:\n%s", s, p.Output())
		}
		serial += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(target.Seconds()/float64(b.N), "s/revoke-in-use")
	b.ReportMetric(serial.Seconds()/float64(b.N), "s/revoke-serial")
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(b)
	as.CheckClean(b)
}
