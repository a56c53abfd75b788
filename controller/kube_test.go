package controller

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// clusterName is every test cluster's name: deploy/controller-rbac.yaml
// grants get on the CA Secret of the cluster etcd-prod, by name.
const clusterName = "etcd-prod"

// kubeSpec is a cluster whose members do not run: for the signer and the
// trust upkeep, which need none.
const kubeSpec = `name: etcd-prod
nodes:
  - {name: etcd-node-1, ips: [127.0.0.1], clientPort: 1, peerPort: 2}
  - {name: etcd-node-2, ips: [127.0.0.2], clientPort: 1, peerPort: 2}
  - {name: etcd-node-3, ips: [127.0.0.3], clientPort: 1, peerPort: 2}
`

// env is one control plane for a test, with the controller's and the
// agents' RBAC installed.
type env struct {
	*kubetest.Env
	// controllerCfg and controllerKubeconfig are the identity bound to
	// deploy/controller-rbac.yaml's roles, as the Deployment's service
	// account is.
	controllerCfg        *rest.Config
	controllerKubeconfig string
	n                    atomic.Int32
	// rbacNS is the namespace deploy/controller-rbac.yaml was applied
	// in; other namespaces get a copy of its Role.
	rbacNS string
}

func startEnv(t testing.TB) *env {
	t.Helper()
	e := &env{Env: kubetest.Start(t)}
	ctx := context.Background()
	const user = "etcdpki-controller-test"
	e.controllerKubeconfig, e.controllerCfg = e.AddUser(t, user)
	// The agents may create and read CSRs (their own RBAC is the agent's,
	// in deploy/agent-rbac.yaml; this is the least the tests need).
	must(t, e.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-agents"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}}}}))
	must(t, e.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "test-agents"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "test-agents"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: v1alpha1.AgentGroup}}}))
	must(t, e.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "etcdpki-controller"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}))
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// namespace makes a namespace with the controller's Role from deploy/
// bound to the controller's identity.
func (e *env) namespace(t testing.TB) string {
	t.Helper()
	ns := e.Namespace(t, fmt.Sprintf("etcd-%d", e.n.Add(1)))
	e.applyRBAC(t, ns)
	must(t, e.Client.Create(context.Background(), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etcdpki-controller-test"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "etcdpki-controller"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "etcdpki-controller-test"}}}))
	return ns
}

// applyRBAC creates deploy/controller-rbac.yaml's objects in ns the
// first time, and later a copy of its Role: its cluster-wide objects
// exist once.
func (e *env) applyRBAC(t testing.TB, ns string) {
	t.Helper()
	if e.rbacNS == "" {
		e.Apply(t, "deploy/controller-rbac.yaml", ns)
		e.rbacNS = ns
		return
	}
	ctx := context.Background()
	var r rbacv1.Role
	must(t, e.Client.Get(ctx, client.ObjectKey{Namespace: e.rbacNS, Name: "etcdpki-controller"}, &r))
	must(t, e.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: r.Name}, Rules: r.Rules}))
}

// fixture is one EtcdCluster in its namespace with its CA Secret and
// trust ConfigMap, as etcdpki export leaves them.
type fixture struct {
	ns  string
	cl  *v1alpha1.EtcdCluster
	ca  *ca.CA
	inv *pki.Inventory
}

// newFixture exports a cluster of spec: a new CA (made two hours ago, so
// that a CRL can be made half-way through its life), its Secret, and a
// trust ConfigMap whose CRL, number 1, revokes serial 0xabc and is
// already past half its hour.
func (e *env) newFixture(t testing.TB, ns string, f cluster.File) *fixture {
	t.Helper()
	ctx := context.Background()
	spec, err := v1alpha1.SpecFromFile(&f)
	must(t, err)
	cl := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: f.Name}, Spec: spec}
	s, err := cl.Cluster(cluster.Options{})
	must(t, err)
	a, err := ca.Create(s.CA, time.Now().Add(-2*time.Hour))
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.CASecretName(f.Name)},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{v1alpha1.SecretCert: a.CertPEM, v1alpha1.SecretKey: a.KeyPEM}}))
	crl, err := a.SignCRL([]ca.Revocation{{Serial: big.NewInt(0xabc), Reason: 1, When: time.Now().Add(-time.Hour)}}, big.NewInt(1), time.Hour, time.Now().Add(-40*time.Minute))
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.TrustConfigMapName(f.Name)},
		BinaryData: map[string][]byte{v1alpha1.TrustCRL: crl}}))
	must(t, e.Client.Create(ctx, cl))
	return &fixture{ns: ns, cl: cl, ca: a, inv: pki.New(s)}
}

func parseSpec(t testing.TB, data string) cluster.File {
	t.Helper()
	var f cluster.File
	must(t, yaml.Unmarshal([]byte(data), &f))
	return f
}

// runController runs the controller in this process for ns, as the
// identity deploy/controller-rbac.yaml binds, until the test ends.
func (e *env) runController(t testing.TB, ns string, probe time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, e.controllerCfg, Options{Namespace: ns, MetricsAddr: "0", ProbeAddr: "0", ProbeInterval: probe, Expand: pki.New,
			LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
}

// agent is a client with an agent's identity.
func (e *env) agent(t testing.TB, user string) client.Client {
	t.Helper()
	_, cfg := e.AddUser(t, user, v1alpha1.AgentGroup)
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	must(t, err)
	return c
}

// request is one CSR an agent sends.
type request struct {
	name, cluster, signer, target string
	usages                        []string
	pem                           []byte
}

// honest is the request the agent of t's owner makes for it.
func (f *fixture) honest(t testing.TB, id string) (request, []byte) {
	t.Helper()
	tg, ok := f.inv.Target(id)
	if !ok {
		t.Fatalf("no target %s", id)
	}
	csrPEM, keyPEM, err := ca.NewCSR(tg.Request(f.inv.Spec.Leaf))
	must(t, err)
	return request{cluster: f.ns + "/" + f.cl.Name, signer: v1alpha1.SignerFor(tg.Kind.Name), target: id, usages: Usages(tg), pem: csrPEM}, keyPEM
}

func submit(t testing.TB, c client.Client, r request) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	csr := r.csr()
	must(t, c.Create(context.Background(), csr))
	return csr
}

// csr is the CertificateSigningRequest object of r.
func (r request) csr() *certificatesv1.CertificateSigningRequest {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: r.name, Annotations: map[string]string{v1alpha1.AnnotationCluster: r.cluster}},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: r.pem, SignerName: r.signer},
	}
	if r.target != "" {
		csr.Annotations[v1alpha1.AnnotationTarget] = r.target
	}
	for _, u := range r.usages {
		csr.Spec.Usages = append(csr.Spec.Usages, certificatesv1.KeyUsage(u))
	}
	return csr
}

// waitFor polls until cond holds; the bound is a guard against a hang,
// not a measure.
func waitFor(t testing.TB, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// answered waits until the CSR is signed or denied, and returns it.
func answered(t testing.TB, c client.Client, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var csr certificatesv1.CertificateSigningRequest
	waitFor(t, "CSR "+name+" to be answered", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &csr); err != nil {
			return false, err
		}
		return len(csr.Status.Certificate) > 0 || hasCondition(&csr, certificatesv1.CertificateDenied) || hasCondition(&csr, certificatesv1.CertificateFailed), nil
	})
	return &csr
}

func condition(csr *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType) (certificatesv1.CertificateSigningRequestCondition, bool) {
	for _, c := range csr.Status.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return certificatesv1.CertificateSigningRequestCondition{}, false
}

// eventFor waits for an Event on the cluster with the reason whose note
// contains text.
func (e *env) eventFor(t testing.TB, f *fixture, reason, text string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a %s Event saying %q", reason, text), func(ctx context.Context) (bool, error) {
		var l eventsv1.EventList
		if err := e.Client.List(ctx, &l, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		for _, ev := range l.Items {
			if ev.Regarding.Name == f.cl.Name && ev.Reason == reason && strings.Contains(ev.Note, text) {
				return true, nil
			}
		}
		return false, nil
	})
}

func parseCert(t testing.TB, data []byte) *x509.Certificate {
	t.Helper()
	c, err := ca.ParseCert(data)
	must(t, err)
	return c
}
