package controller

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/pki"
)

// exportFixture hands a running test cluster's PKI to the apiserver as
// etcdpki export does: the EtcdCluster, the CA Secret, the trust
// ConfigMap.
func (e *env) exportFixture(t testing.TB, ns string, c *etcdtest.Cluster) *fixture {
	t.Helper()
	ctx := context.Background()
	spec, err := v1alpha1.SpecFromFile(&c.File)
	must(t, err)
	cl := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: c.File.Name}, Spec: spec}
	a, err := pki.LoadCA(c.Paths)
	must(t, err)
	key, err := os.ReadFile(c.Paths.CAKey())
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.CASecretName(cl.Name)},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{v1alpha1.SecretCert: a.CertPEM, v1alpha1.SecretKey: key}}))
	crl, err := os.ReadFile(c.Paths.CRL())
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.TrustConfigMapName(cl.Name)},
		Data: map[string]string{v1alpha1.TrustCA: string(a.CertPEM)}, BinaryData: map[string][]byte{v1alpha1.TrustCRL: crl}}))
	must(t, e.Client.Create(ctx, cl))
	return &fixture{ns: ns, cl: cl, ca: a, inv: pki.New(c.Spec)}
}

// TestStatusProvesTheMembers runs the controller against real members:
// the status shows the serials each port serves, proven by the
// controller, and Ready; a member that stops makes the cluster Degraded
// with a reason that names it.
func TestStatusProvesTheMembers(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: clusterName})
	e := startEnv(t)
	ns := e.namespace(t)
	f := e.exportFixture(t, ns, c)
	e.runController(t, ns, 200*time.Millisecond)

	var cl v1alpha1.EtcdCluster
	status := func(cond func() bool) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			if err := e.Client.Get(ctx, client.ObjectKeyFromObject(f.cl), &cl); err != nil {
				return false, err
			}
			return cond(), nil
		}
	}
	waitFor(t, "Ready", status(func() bool { return meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionReady) }))
	if cl.Status.ObservedGeneration != cl.Generation {
		t.Errorf("observedGeneration %d, generation %d", cl.Status.ObservedGeneration, cl.Generation)
	}
	for _, n := range c.Spec.Nodes {
		for _, kind := range []string{"etcd-server", "etcd-peer"} {
			id := n.Name + "/" + kind
			tg, _ := f.inv.Target(id)
			want := certx.Serial(testpki.ReadCert(t, tg.CertPath()))
			got, ok := cl.Status.Certificate(id)
			if !ok || got.Serial != want || !got.InEffect || got.ProvenBy != v1alpha1.ProvenByController || got.ProvenAt == nil || got.Owner != n.Name {
				t.Errorf("%s: status %+v, want serial %s proven in effect by the controller", id, got, want)
			}
		}
	}
	e.eventFor(t, f, v1alpha1.ConditionReady, "Ready is True")

	down := c.Spec.Nodes[2].Name
	must(t, c.Members[2].Stop())
	waitFor(t, "Degraded", status(func() bool { return meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionDegraded) }))
	d := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionDegraded)
	if d.Reason != ReasonMemberUnreachable || !strings.HasPrefix(d.Message, down+" did not answer: client port ") {
		t.Errorf("Degraded %s: %q, want %s naming %s", d.Reason, d.Message, ReasonMemberUnreachable, down)
	}
	if meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionReady) {
		t.Error("Ready with a member down")
	}
	e.eventFor(t, f, v1alpha1.ConditionDegraded, "Degraded is True (MemberUnreachable): "+down)
	if v := testutil.ToFloat64(memberProven.WithLabelValues(ns, clusterName, down)); v != 0 {
		t.Errorf("etcdpki_controller_member_proven of the stopped member is %v", v)
	}
	if v := testutil.ToFloat64(memberProven.WithLabelValues(ns, clusterName, c.Spec.Nodes[0].Name)); v != 1 {
		t.Errorf("etcdpki_controller_member_proven of a running member is %v", v)
	}
}
