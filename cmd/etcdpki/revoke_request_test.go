package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/kube"
)

// TestRevokeRequestRefusesBadInput runs certs revoke --kubeconfig against
// a real apiserver and an exported PKI: every bad request exits 2 with
// one line naming what is wrong, and leaves the EtcdCluster as it was (same
// resourceVersion). A good one adds the entry, the target resolved to the
// serial its status shows in use, and with no controller running exits 1
// at --timeout saying what status shows.
func TestRevokeRequestRefusesBadInput(t *testing.T) {
	env := kubetest.Start(t)
	kc := env.AdminKubeconfig(t)
	root := t.TempDir()
	spec := exportSpec(t, root, "prod.yaml", "prod", "pki", "")
	mustRun(t, "init", "--spec", spec)
	ns := env.Namespace(t, "revoke")
	mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
	ctx := context.Background()
	key := client.ObjectKey{Namespace: ns, Name: "prod"}
	get := func() v1alpha1.EtcdCluster {
		t.Helper()
		var ec v1alpha1.EtcdCluster
		if err := env.Client.Get(ctx, key, &ec); err != nil {
			t.Fatal(err)
		}
		return ec
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.TrustConfigMapName("prod")}, &cm); err != nil {
		t.Fatal(err)
	}
	caCert, err := ca.ParseCert([]byte(cm.Data[v1alpha1.TrustCA]))
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(args ...string) (int, string, string) {
		t.Helper()
		return etcdpkiRun(t, append([]string{"certs", "revoke", "--kubeconfig", kc, "--namespace", ns}, args...)...)
	}
	before := get()
	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"unknown target", []string{"--cluster", "prod", "etcd-node-9"}, `certs revoke: unknown certificate "etcd-node-9": EtcdCluster ` + ns + `/prod has no such certificate, owner or kind (its certificates: `},
		{"no serial in status", []string{"--cluster", "prod", "etcd-node-1/etcd-server"}, "certs revoke: etcd-node-1/etcd-server has no serial in the status of EtcdCluster " + ns + "/prod: its agent has not reported it (is it running?); give --serial if you know it"},
		{"bad serial", []string{"--cluster", "prod", "--serial", "xyz"}, `certs revoke: --serial "xyz": not a positive hexadecimal serial`},
		{"zero serial", []string{"--cluster", "prod", "--serial", "0"}, `certs revoke: --serial "0": not a positive hexadecimal serial`},
		{"the CA's serial", []string{"--cluster", "prod", "--serial", fmt.Sprintf("%X", caCert.SerialNumber)},
			fmt.Sprintf("certs revoke: --serial %x is the CA's own serial: a CA leaves the trust through ca rotate, not the CRL", caCert.SerialNumber)},
		{"unknown reason", []string{"--cluster", "prod", "--reason", "boredom", "--serial", "abc"}, `certs revoke: --reason "boredom": use one of unspecified, keyCompromise,`},
		{"unknown cluster", []string{"--cluster", "nosuch", "--serial", "abc"}, "--cluster nosuch: EtcdCluster " + ns + "/nosuch does not exist (etcdpki export creates it)"},
		{"both", []string{"--cluster", "prod", "--serial", "abc", "etcd-node-1"}, "certs revoke: give TARGETs or --serial, not both"},
		{"neither", []string{"--cluster", "prod"}, "certs revoke: name the certificates to revoke, or give --serial"},
		{"no cluster", []string{"--serial", "abc"}, "--cluster: missing (the EtcdCluster's name, the spec's name)"},
		{"a PKI flag", []string{"--cluster", "prod", "--force", "--serial", "abc"}, "certs revoke: --force works on a PKI directory: it does not go with --kubeconfig, which asks the controller (use one or the other)"},
		{"bad timeout", []string{"--cluster", "prod", "--timeout", "0s", "--serial", "abc"}, "--timeout 0s: must be positive"},
	} {
		code, _, errs := revoke(c.args...)
		if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.err) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, errs, c.err)
		}
	}
	if after := get(); after.ResourceVersion != before.ResourceVersion || len(after.Spec.Revocations) != 0 {
		t.Fatalf("a refused request changed the EtcdCluster: %+v", after.Spec.Revocations)
	}
	if code, _, errs := etcdpkiRun(t, "certs", "revoke", "--spec", spec, "--cluster", "prod", "etcd-node-1"); code != 2 || !strings.Contains(errs, "--cluster applies only with --kubeconfig") {
		t.Errorf("classic revoke with --cluster: exit %d, stderr %q", code, errs)
	}

	// The agent's report: the serial in use and its expiry.
	notAfter := metav1.NewTime(time.Now().Add(24 * time.Hour).Truncate(time.Second))
	err = kube.UpdateStatus(ctx, env.Client, key, func(ec *v1alpha1.EtcdCluster) error {
		ec.Status.Observe(v1alpha1.CertificateStatus{ID: "etcd-node-1/etcd-peer", Owner: "etcd-node-1", Serial: "5eed", NotAfter: &notAfter, InEffect: true})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := revoke("--cluster", "prod", "--timeout", "2s", "--reason", "keyCompromise", "etcd-node-1/etcd-peer")
	if code != 1 || !strings.Contains(errs, "not every revocation is enforced after 2s: 5eed: ") {
		t.Errorf("no controller: exit %d, stderr %q; want 1 naming the serial", code, errs)
	}
	if !strings.Contains(out, "etcd-node-1/etcd-peer (serial 5eed): added to spec.revocations of EtcdCluster "+ns+"/prod (reason keyCompromise)") {
		t.Errorf("stdout lacks the added line:\n%s", out)
	}
	rs := get().Spec.Revocations
	if len(rs) != 1 || rs[0].Serial != "5eed" || rs[0].Target != "etcd-node-1/etcd-peer" || rs[0].Reason != "keyCompromise" ||
		rs[0].NotAfter == nil || !rs[0].NotAfter.Equal(&notAfter) || rs[0].RequestedAt == nil {
		t.Errorf("spec.revocations %+v", rs)
	}
	// Again: nothing added, it only waits.
	code, out, _ = revoke("--cluster", "prod", "--timeout", "1s", "--serial", "5EED")
	if code != 1 || !strings.Contains(out, "already in spec.revocations") || len(get().Spec.Revocations) != 1 {
		t.Errorf("a second request for the serial: exit %d, stdout %q, %d entries", code, out, len(get().Spec.Revocations))
	}
}
