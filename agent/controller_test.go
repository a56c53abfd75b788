package agent_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// TestAgentWithTheController: the CSRs the agents make are what the real
// controller's signer approves and signs (etcdpki controller as a
// process, the CA in its Secret): a node's three certificates and the
// kube-apiserver's client certificate, each renewed, proven and shown in
// effect in the status.
func TestAgentWithTheController(t *testing.T) {
	f := startKube(t)
	certPEM, _ := os.ReadFile(f.c.Paths.CACert())
	keyPEM, _ := os.ReadFile(f.c.Paths.CAKey())
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.CASecretName(f.name), Namespace: f.ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{v1alpha1.SecretCert: certPEM, v1alpha1.SecretKey: keyPEM}}
	if err := f.env.Client.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	ctl := exec.Command(etcdpkiBin(t), "controller", "--kubeconfig", f.env.AdminKubeconfig(t), "--namespace", f.ns,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	out := &etcdtest.Buffer{}
	ctl.Stdout, ctl.Stderr = out, out
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctl.Process.Kill()
		ctl.Wait()
		if t.Failed() {
			t.Logf("controller output:\n%s", out.String())
		}
	})
	node := f.c.Spec.Nodes[0].Name
	at := f.request(t, node, cluster.ClientAPIServer)
	for _, a := range []*agentProc{f.startAgent(t, node, true, "--once"), f.startAgent(t, cluster.ClientAPIServer, false, "--once")} {
		if err := a.wait(t, 120*time.Second); err != nil {
			t.Fatalf("agent --once: %v\n%s", err, a.out.String())
		}
	}
	f.waitInEffect(t, at, 90*time.Second, append(f.hostTargets(t, node, true), f.hostTargets(t, cluster.ClientAPIServer, false)...)...)
}
