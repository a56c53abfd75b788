package selfhost

import (
	"testing"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// AgentKubeconfig writes a kubeconfig for the agent of owner, a node or a
// client of the spec: the identity the signer checks (etcdpki:node:NODE
// or etcdpki:client:NAME), in v1alpha1.AgentGroup, authenticated by a
// client certificate as a kubelet is.
func (e *Env) AgentKubeconfig(t testing.TB, owner string) string {
	t.Helper()
	user := v1alpha1.ClientUser(owner)
	if _, ok := e.NodeDirs[owner]; ok {
		user = v1alpha1.NodeUser(owner)
	} else if _, ok := e.Spec.Client(owner); !ok {
		t.Fatalf("selfhost: %s is neither a node nor a client of the spec", owner)
	}
	path, _ := e.Kube.AddUser(t, user, v1alpha1.AgentGroup)
	return path
}

// AgentArgs are the arguments of `etcdpki agent` for owner (a node or a
// client) with the flags of its contract: the bundle directory it renews
// is owner's (NodeDirs, or APIServerDir for kube-apiserver).
func (e *Env) AgentArgs(t testing.TB, owner, kubeconfig, namespace string) []string {
	t.Helper()
	args := []string{"agent", "--kubeconfig", kubeconfig, "--namespace", namespace, "--cluster", e.Spec.Name}
	if dir, ok := e.NodeDirs[owner]; ok {
		return append(args, "--node", owner, "--dir", dir)
	}
	b, ok := e.Inventory.Bundle(owner)
	if !ok {
		t.Fatalf("selfhost: no bundle for %s", owner)
	}
	return append(args, "--client", owner, "--dir", b.Root)
}

// ControllerArgs are the arguments of one `etcdpki controller` replica
// with leader election; its metrics and health endpoints are off, so
// that replicas on one machine do not compete for ports.
func ControllerArgs(kubeconfig, namespace string) []string {
	return []string{"controller", "--kubeconfig", kubeconfig, "--namespace", namespace, "--leader-elect",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
}
