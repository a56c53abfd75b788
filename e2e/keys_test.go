package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

const keyMarker = "PRIVATE KEY"

// checkNone fails t on a private key in any CSR, ConfigMap or
// EtcdCluster, looking at their decoded bytes (a CSR's request and
// certificate, a ConfigMap's binaryData) as well as their JSON.
func checkNone(t testing.TB, ctx context.Context, c client.Client) {
	t.Helper()
	var csrs certificatesv1.CertificateSigningRequestList
	if err := c.List(ctx, &csrs); err != nil {
		t.Fatal(err)
	}
	for _, r := range csrs.Items {
		if strings.Contains(string(r.Spec.Request), keyMarker) || strings.Contains(string(r.Status.Certificate), keyMarker) {
			t.Errorf("CSR %s holds a private key", r.Name)
		}
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			if strings.Contains(v, keyMarker) {
				t.Errorf("ConfigMap %s/%s %s holds a private key", cm.Namespace, cm.Name, k)
			}
		}
		for k, v := range cm.BinaryData {
			if strings.Contains(string(v), keyMarker) {
				t.Errorf("ConfigMap %s/%s %s holds a private key", cm.Namespace, cm.Name, k)
			}
		}
	}
	var ecs v1alpha1.EtcdClusterList
	if err := c.List(ctx, &ecs); err != nil {
		t.Fatal(err)
	}
	for _, ec := range ecs.Items {
		b, _ := json.Marshal(ec)
		if strings.Contains(string(b), keyMarker) {
			t.Errorf("EtcdCluster %s/%s holds a private key", ec.Namespace, ec.Name)
		}
	}
	if len(csrs.Items) == 0 {
		t.Error("no CSR at all: the check looked at nothing the agents sent")
	}
}
