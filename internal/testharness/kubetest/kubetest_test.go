package kubetest

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// The harness runs the real apiserver with the CRD installed: an
// EtcdCluster is stored and validated by the schema, a user made before
// a stop and start of the apiserver still authenticates after it.
func TestControlPlane(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "kubetest")
	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: v1alpha1.EtcdClusterSpec{
		Name: "prod", Nodes: []v1alpha1.NodeSpec{{Name: "etcd-1", IPs: []string{"127.0.0.1"}}},
	}}
	if err := e.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	bad := ec.DeepCopy()
	bad.ResourceVersion, bad.Name = "", "bad"
	bad.Spec.Certs.KeyAlgorithm = "dsa"
	if err := e.Client.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "keyAlgorithm") {
		t.Errorf("keyAlgorithm dsa: err = %v, want the CRD schema to refuse it", err)
	}

	kc, _ := e.AddUser(t, v1alpha1.NodeUser("etcd-1"), v1alpha1.AgentGroup)
	e.StopAPIServer(t)
	e.StartAPIServer(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// No RBAC grants the user anything: a Forbidden naming the user
	// proves it authenticated (an unknown certificate is Unauthorized).
	err = c.Get(ctx, client.ObjectKeyFromObject(ec), &v1alpha1.EtcdCluster{})
	if err == nil || !strings.Contains(err.Error(), `User "etcdpki:node:etcd-1" cannot get`) {
		t.Errorf("after a restart, the agent's user: err = %v, want forbidden as etcdpki:node:etcd-1", err)
	}
	var got v1alpha1.EtcdCluster
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(ec), &got); err != nil || got.Spec.Nodes[0].IPs[0] != "127.0.0.1" {
		t.Errorf("the EtcdCluster after a restart: %+v, %v", got.Spec, err)
	}
}
