package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
)

// --namespace repeated serves each once; none serves every namespace,
// and the Lease goes to --lease-namespace, else the first namespace.
func TestServedNamespacesAndTheLease(t *testing.T) {
	o := Options{Namespace: "a", Namespaces: []string{"b", "a", ""}}
	s := o.namespaces()
	if got := strings.Join(s, ","); got != "a,b" || !s.has("b") || s.has("c") || len(s.cacheNamespaces()) != 2 {
		t.Errorf("served %q, has(b) %v, has(c) %v", got, s.has("b"), s.has("c"))
	}
	if ns, err := o.leaseNamespace(); ns != "a" || err != nil {
		t.Errorf("lease namespace %q, %v; want the first served", ns, err)
	}
	all := Options{LeaseNamespace: "ops"}
	if s := all.namespaces(); !s.has("anything") || s.cacheNamespaces() != nil || s.String() != "every namespace" {
		t.Errorf("no namespace named: served %v", s)
	}
	if ns, _ := all.leaseNamespace(); ns != "ops" {
		t.Errorf("lease namespace %q, want ops", ns)
	}
}

// TestOneControllerServesEveryNamespace: a controller given no namespace
// signs the CSRs of EtcdClusters in two namespaces it was never told
// of, and keeps its Lease in --lease-namespace.
func TestOneControllerServesEveryNamespace(t *testing.T) {
	e := startEnv(t)
	nsA, nsB, lease := e.namespace(t), e.namespace(t), e.namespace(t)
	fa, fb := e.newFixture(t, nsA, parseSpec(t, kubeSpec)), e.newFixture(t, nsB, parseSpec(t, kubeSpec))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The admin's identity: the RBAC shipped in deploy/ is per namespace.
		done <- Run(ctx, e.Config, Options{LeaseNamespace: lease, LeaderElect: true, MetricsAddr: "0", ProbeAddr: "0", ProbeInterval: time.Hour, Expand: pki.New,
			LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	node1 := e.agent(t, v1alpha1.NodeUser("etcd-node-1"))
	for i, f := range []*fixture{fa, fb} {
		r, _ := f.honest(t, "etcd-node-1/etcd-server")
		r.name = f.ns + "-server"
		submit(t, node1, r)
		got := answered(t, e.Client, r.name)
		if _, ok := condition(got, certificatesv1.CertificateApproved); !ok || len(got.Status.Certificate) == 0 {
			t.Errorf("cluster %d (namespace %s): CSR not signed: %+v", i, f.ns, got.Status.Conditions)
		}
		// The metrics say which cluster: namespace and name.
		if n := testutil.ToFloat64(csrDecisions.WithLabelValues(f.ns, clusterName, "signed")); n != 1 {
			t.Errorf("etcdpki_controller_csr_decisions_total{namespace=%q,cluster=%q,decision=signed} = %v, want 1", f.ns, clusterName, n)
		}
	}
	var l coordinationv1.Lease
	must(t, e.Client.Get(context.Background(), client.ObjectKey{Namespace: lease, Name: v1alpha1.LeaseName}, &l))
}
