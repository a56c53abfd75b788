package controller

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
)

// TestCARotationKeysStayInTheToken runs the rotation's key steps with the
// CA key in a PKCS#11 token (a real SoftHSM2 token): prepare makes the
// next key in the token and keeps only its URI in the Secret; reissue's
// swap makes it the signing CA (the CRL signed again by it) and keeps the
// old one's URI; finish drops the old URI, and the old key stays in the
// token. No API object ever holds a private key.
func TestCARotationKeysStayInTheToken(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	e := startEnv(t)
	ns := e.namespace(t)
	ctx := context.Background()
	f := parseSpec(t, kubeSpec)
	f.CA.Key = tk.URI("etcd-ca")
	for i := range f.Nodes {
		f.Nodes[i].Restart = "true"
	}
	spec, err := v1alpha1.SpecFromFile(&f)
	must(t, err)
	cl := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: f.Name}, Spec: spec}
	s, err := cl.Cluster(cluster.Options{})
	must(t, err)
	old, err := ca.Create(s.CA, time.Now())
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.CASecretName(f.Name)},
		Data: map[string][]byte{v1alpha1.SecretCert: old.CertPEM, v1alpha1.SecretKeyURI: []byte(old.Token.String())}}))
	crl, err := old.SignCRL([]ca.Revocation{{Serial: big.NewInt(0xabc), Reason: 1, When: time.Now()}}, big.NewInt(1), time.Hour, time.Now())
	must(t, err)
	must(t, e.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.TrustConfigMapName(f.Name)},
		Data: map[string]string{v1alpha1.TrustCA: string(old.CertPEM)}, BinaryData: map[string][]byte{v1alpha1.TrustCRL: crl}}))
	must(t, e.Client.Create(ctx, cl))

	r := &clusterReconciler{c: e.Client, reader: e.Client}
	key := client.ObjectKeyFromObject(cl)
	run := func() *caRun {
		t.Helper()
		var now v1alpha1.EtcdCluster
		must(t, e.Client.Get(ctx, key, &now))
		k, err := r.loadKeys(ctx, &now)
		must(t, err)
		return &caRun{r: r, key: key, cl: &now, st: &v1alpha1.CARotationStatus{ID: "t", Stage: v1alpha1.CAStagePrepare}, inv: pki.New(s), keys: k, now: time.Now()}
	}
	secret := func() map[string][]byte {
		t.Helper()
		var sec corev1.Secret
		must(t, e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.CASecretName(f.Name)}, &sec))
		for k, v := range sec.Data {
			if bytes.Contains(v, []byte("PRIVATE KEY")) {
				t.Errorf("Secret key %s holds a private key", k)
			}
		}
		return sec.Data
	}

	if next, _, err := run().prepare(ctx); err != nil || next != v1alpha1.CAStageTrustBoth {
		t.Fatalf("prepare: next %q, %v", next, err)
	}
	d := secret()
	if _, ok := d[v1alpha1.SecretNextCert]; !ok || !strings.Contains(string(d[v1alpha1.SecretNextKeyURI]), "object=etcd-ca-next") || d[v1alpha1.SecretNextKey] != nil {
		t.Fatalf("after prepare the Secret has %v (next-key-uri %q), want next-tls.crt and the URI of the token key etcd-ca-next", keysOf(d), d[v1alpha1.SecretNextKeyURI])
	}
	cr := run()
	newCert := cr.keys.next.Cert
	if cr.keys.next.Token == nil || newCert.Equal(old.Cert) {
		t.Fatalf("the next CA %v is not a new CA with its key in the token", cr.keys.next.Token)
	}
	must(t, cr.swap(ctx))
	cr = run()
	if !cr.keys.swapped() || !cr.keys.current.Cert.Equal(newCert) || !cr.keys.old.Cert.Equal(old.Cert) || cr.keys.current.Token == nil || cr.keys.old.Token == nil {
		t.Fatalf("after the swap: current %s, old %v; want the new CA signing and the old kept, both in the token", cr.keys.current.Cert.Subject, cr.keys.old)
	}
	// The token key of the new CA signs: a probe certificate verifies
	// against the new CA.
	pair, err := cr.keys.current.ProbeClient(ca.ProbeValidity, time.Now())
	must(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	must(t, err)
	if err := leaf.CheckSignatureFrom(newCert); err != nil {
		t.Errorf("a certificate signed after the swap does not verify against the new CA: %v", err)
	}
	var cm corev1.ConfigMap
	must(t, e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.TrustConfigMapName(f.Name)}, &cm))
	l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL])
	must(t, err)
	if l.CheckSignatureFrom(withCRLSign(newCert)) != nil || len(l.RevokedCertificateEntries) != 1 || l.Number.Int64() != 2 {
		t.Errorf("CRL after the swap: number %v, %d entries; want number 2 with the entry, signed by the new CA", l.Number, len(l.RevokedCertificateEntries))
	}
	must(t, cr.dropOld(ctx))
	d = secret()
	if len(d) != 2 || d[v1alpha1.SecretKeyURI] == nil {
		t.Errorf("after finish the Secret has %v, want tls.crt and key-uri", keysOf(d))
	}
	// The old key is still in the token (relabelled by the CLI, never
	// deleted): it opens by its URI.
	if _, err := ca.ParseStore(old.CertPEM, nil, []byte(old.Token.String()), "old", "", "old uri"); err != nil {
		t.Errorf("the old CA key is no longer in the token: %v", err)
	}
}

func withCRLSign(c *x509.Certificate) *x509.Certificate {
	cp := *c
	cp.KeyUsage |= x509.KeyUsageCRLSign
	return &cp
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
