package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/export"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// exportNamed makes a PKI named name (3 members on 127.0.i.1-3, ports 1
// and 2: nothing listens) with issue.Init and exports it to ns with
// export.Run, as `etcdpki init` and `etcdpki export` do.
func exportNamed(t testing.TB, ctx context.Context, e *kubetest.Env, ns, name string, i int) fleetMember {
	t.Helper()
	dir := t.TempDir()
	var spec strings.Builder
	fmt.Fprintf(&spec, "name: %s\npkiDir: %s\nnodes:\n", name, filepath.Join(dir, "pki"))
	for j := 1; j <= 3; j++ {
		fmt.Fprintf(&spec, "  - {name: %s-node-%d, ips: [127.0.%d.%d], clientPort: 1, peerPort: 2}\n", ns, j, i, j)
	}
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(spec.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(ctx, inv, issue.Options{Out: io.Discard}); err != nil {
		t.Fatalf("init %s/%s: %v", ns, name, err)
	}
	if _, err := export.Run(ctx, inv, export.Options{Client: e.Client, Namespace: ns, Out: io.Discard}); err != nil {
		t.Fatalf("export %s/%s: %v", ns, name, err)
	}
	return fleetMember{name: name, inv: inv}
}

// copyAgentRBAC gives ns the agents' Role and RoleBinding of from, where
// deploy/agent-rbac.yaml was applied (its ClusterRole exists once).
func copyAgentRBAC(t testing.TB, ctx context.Context, c client.Client, from, ns string) {
	t.Helper()
	var role rbacv1.Role
	var rb rbacv1.RoleBinding
	if err := c.Get(ctx, client.ObjectKey{Namespace: from, Name: "etcdpki-agent"}, &role); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: from, Name: "etcdpki-agent"}, &rb); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name}, Rules: role.Rules}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rb.Name}, RoleRef: rb.RoleRef, Subjects: rb.Subjects}); err != nil {
		t.Fatal(err)
	}
}

// TestClusterRBACServesEveryNamespace runs `etcdpki controller` with no
// --namespace as the ServiceAccount deploy/controller-rbac-cluster.yaml
// binds, applied as shipped: it serves an EtcdCluster etcd-prod in each of
// two namespaces it was never told of (every agent's CSRs signed, each
// cluster's status written), keeps its Lease in --lease-namespace, and is
// refused what the file does not give it: another Secret, a list of
// Secrets, a Lease elsewhere, deleting an EtcdCluster, signing for a
// kubernetes.io signer.
func TestClusterRBACServesEveryNamespace(t *testing.T) {
	e := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The namespace the file's bindings name, as startEtcdpki does.
	lease := e.Namespace(t, "etcd-system")
	e.Apply(t, "deploy/controller-rbac-cluster.yaml", lease)
	nsA, nsB := e.Namespace(t, "team-a"), e.Namespace(t, "team-b")
	e.Apply(t, "deploy/agent-rbac.yaml", nsA)
	copyAgentRBAC(t, ctx, e.Client, nsA, nsB)
	// Both clusters are named etcd-prod: the CA Secret the file names, in
	// two namespaces, each with its own CA.
	fleetA := []fleetMember{exportNamed(t, ctx, e, nsA, "etcd-prod", 1)}
	fleetB := []fleetMember{exportNamed(t, ctx, e, nsB, "etcd-prod", 2)}
	// A Secret beside each CA Secret that the controller must not read.
	for _, ns := range []string{nsA, nsB} {
		if err := e.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}, StringData: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
	}

	const sa = "system:serviceaccount:etcd-system:etcdpki-controller"
	kc, cfg := e.AddUser(t, sa, "system:serviceaccounts", "system:serviceaccounts:etcd-system")
	ctrl := selfhost.StartEtcdpki(t, "controller", "controller", "--kubeconfig", kc, "--lease-namespace", lease, "--leader-elect",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	waitProbed(t, ctx, e.Client, nsA, 1, ctrl)
	waitProbed(t, ctx, e.Client, nsB, 1, ctrl)

	agents := append(fleetAgents(t, ctx, e, nsA, fleetA), fleetAgents(t, ctx, e, nsB, fleetB)...)
	renewFleet(t, ctx, agents)
	csrs := 0
	for _, a := range agents {
		csrs += len(a.targets)
	}
	checkAllSigned(t, ctx, e.Client, csrs)

	var l coordinationv1.Lease
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: lease, Name: v1alpha1.LeaseName}, &l); err != nil {
		t.Errorf("the Lease in --lease-namespace %s: %v", lease, err)
	}
	if out := ctrl.Output(); strings.Contains(out, "forbidden") {
		t.Errorf("the controller was refused something it needs:\n%s", out)
	}
	checkControllerRefused(t, ctx, cfg, nsA)
}

// checkControllerRefused: as the controller's ServiceAccount, what the
// cluster-wide RBAC does not give is refused, and (so that the checks
// can fail) what it gives is allowed.
func checkControllerRefused(t *testing.T, ctx context.Context, cfg *rest.Config, ns string) {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	dry := client.DryRunAll
	checks := []struct {
		what    string
		allowed bool
		do      func() error
	}{
		{"get the CA Secret " + v1alpha1.CASecretName("etcd-prod"), true, func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.CASecretName("etcd-prod")}, &corev1.Secret{})
		}},
		{"get another Secret", false, func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "other"}, &corev1.Secret{}) }},
		{"list Secrets", false, func() error { return c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)) }},
		{"list Secrets in every namespace", false, func() error { return c.List(ctx, &corev1.SecretList{}) }},
		{"create a Secret", false, func() error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "made"}}, dry)
		}},
		{"create a Lease outside --lease-namespace", false, func() error {
			return c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.LeaseName}}, dry)
		}},
		{"delete the EtcdCluster", false, func() error {
			return c.Delete(ctx, &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etcd-prod"}}, dry)
		}},
		{"create an EtcdCluster", false, func() error {
			return c.Create(ctx, &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "made"}}, dry)
		}},
	}
	for _, ch := range checks {
		err := ch.do()
		switch {
		case ch.allowed && err != nil:
			t.Errorf("%s: %v, want allowed", ch.what, err)
		case !ch.allowed && !apierrors.IsForbidden(err):
			t.Errorf("%s: %v, want forbidden", ch.what, err)
		}
	}
	// Signing: only etcdpki's signers. The apiserver checks a CSR's
	// approval and signature against the signer's name and against
	// DOMAIN/*, the name the file grants.
	for signer, want := range map[string]bool{"etcdpki.io/*": true, "kubernetes.io/*": false, "kubernetes.io/kube-apiserver-client": false, "kubernetes.io/kubelet-serving": false} {
		for _, verb := range []string{"approve", "sign"} {
			r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: "certificates.k8s.io", Resource: "signers", Name: signer, Verb: verb}}}
			if err := c.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != want {
				t.Errorf("%s for signer %s: allowed %v, want %v", verb, signer, r.Status.Allowed, want)
			}
		}
	}
}
