package controller

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// TestSigner runs the controller against a real kube-apiserver, as the
// identity deploy/controller-rbac.yaml grants, and sends it CSRs as the
// agents would.
func TestSigner(t *testing.T) {
	e := startEnv(t)
	ns := e.namespace(t)
	f := e.newFixture(t, ns, parseSpec(t, kubeSpec))
	e.runController(t, ns, time.Hour)
	node1 := e.agent(t, v1alpha1.NodeUser("etcd-node-1"))
	apiserver := e.agent(t, v1alpha1.ClientUser(cluster.ClientAPIServer))

	t.Run("denials name the mismatch", func(t *testing.T) {
		// Node 1's identity asks for a certificate with node 2's SANs.
		n2, _ := f.inv.Target("etcd-node-2/etcd-server")
		r := n2.Request(f.inv.Spec.Leaf)
		r.CommonName = "etcd-node-1"
		stolen, _, err := ca.NewCSR(r)
		must(t, err)
		big, _ := f.honest(t, "etcd-node-1/etcd-peer")
		r1, _ := f.inv.Target("etcd-node-1/etcd-peer")
		rq := r1.Request(f.inv.Spec.Leaf)
		rq.Key = cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 384}
		big.pem, _, err = ca.NewCSR(rq)
		must(t, err)
		usage, _ := f.honest(t, "apiserver-etcd-client")
		usage.usages = append(usage.usages, string(certificatesv1.UsageServerAuth))
		lost, _ := f.honest(t, "apiserver-etcd-client")
		lost.cluster = ns + "/no-such-cluster"

		for _, c := range []struct {
			name   string
			who    client.Client
			r      request
			reason string
		}{
			{"node-1-asks-for-node-2s-sans", node1, request{cluster: ns + "/" + clusterName, signer: v1alpha1.SignerServer, pem: stolen,
				usages: Usages(n2)}, "SAN 127.0.0.2 belongs to etcd-node-2, not etcd-node-1"},
			{"wrong-key-size", node1, big, "key ecdsa-384, the spec says ecdsa-256"},
			{"usage-the-spec-does-not-give", apiserver, usage,
				`usage "server auth" is not in the spec for apiserver-etcd-client (it gives digital signature, key encipherment, client auth)`},
			{"unknown-cluster", apiserver, lost, "unknown cluster " + ns + "/no-such-cluster"},
		} {
			c.r.name = c.name
			submit(t, c.who, c.r)
			got := answered(t, e.Client, c.name)
			d, ok := condition(got, certificatesv1.CertificateDenied)
			if !ok || d.Reason != ReasonDenied || d.Message != c.reason || len(got.Status.Certificate) > 0 {
				t.Errorf("%s: conditions %+v, certificate %d bytes; want Denied %q", c.name, got.Status.Conditions, len(got.Status.Certificate), c.reason)
			}
		}
		e.eventFor(t, f, EventDenied, "SAN 127.0.0.2 belongs to etcd-node-2, not etcd-node-1")
		if n := testutil.ToFloat64(csrDecisions.WithLabelValues(ns, clusterName, "denied")); n < 3 {
			t.Errorf("etcdpki_controller_csr_decisions_total{namespace=%q,cluster=%q,decision=denied} is %v after 3 denials of its CSRs", ns, clusterName, n)
		}
	})

	t.Run("an exact request is signed and chains to the CA", func(t *testing.T) {
		r, keyPEM := f.honest(t, "etcd-node-1/etcd-server")
		r.name = "node-1-server"
		submit(t, node1, r)
		got := answered(t, e.Client, r.name)
		if _, ok := condition(got, certificatesv1.CertificateApproved); !ok || len(got.Status.Certificate) == 0 {
			t.Fatalf("conditions %+v, certificate %d bytes", got.Status.Conditions, len(got.Status.Certificate))
		}
		if err := ca.CheckPair(got.Status.Certificate, keyPEM); err != nil {
			t.Fatalf("the certificate is not for the agent's key: %v", err)
		}
		cert := parseCert(t, got.Status.Certificate)
		for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if err := f.ca.Verify(cert, u, time.Now()); err != nil {
				t.Errorf("usage %v: %v", u, err)
			}
		}
		tg, _ := f.inv.Target("etcd-node-1/etcd-server")
		sans, want := certx.SANs(cert), slices.Clone(tg.Hosts)
		slices.Sort(sans)
		slices.Sort(want)
		if cert.Subject.CommonName != "etcd-node-1" || !slices.Equal(sans, want) {
			t.Errorf("signed CN %q SANs %v, want etcd-node-1 %v", cert.Subject.CommonName, sans, want)
		}
		e.eventFor(t, f, EventSigned, "CSR node-1-server for etcd-node-1/etcd-server: signed, serial "+pki.ShortSerial(certx.Serial(cert)))
	})

	t.Run("the trust ConfigMap gets ca.crt and a CRL signed again", func(t *testing.T) {
		var cm corev1.ConfigMap
		waitFor(t, "the CRL to be signed again", func(ctx context.Context) (bool, error) {
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.TrustConfigMapName(clusterName)}, &cm); err != nil {
				return false, err
			}
			l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL])
			return err == nil && l.Number.Int64() > 1, nil
		})
		if cm.Data[v1alpha1.TrustCA] != string(f.ca.CertPEM) {
			t.Errorf("ca.crt is not the CA Secret's tls.crt:\n%s", cm.Data[v1alpha1.TrustCA])
		}
		l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL])
		must(t, err)
		if err := l.CheckSignatureFrom(f.ca.Cert); err != nil {
			t.Error(err)
		}
		if l.Number.Int64() != 2 || len(l.RevokedCertificateEntries) != 1 || l.RevokedCertificateEntries[0].SerialNumber.Int64() != 0xabc {
			t.Errorf("CRL number %v with %d entries, want number 2 revoking abc", l.Number, len(l.RevokedCertificateEntries))
		}
		if pki.CRLStale(&pki.CRL{ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate}, time.Now()) {
			t.Errorf("the new CRL (%s to %s) is already past half its life", l.ThisUpdate, l.NextUpdate)
		}
		e.eventFor(t, f, EventTrust, "crl.der signed again")
	})
}

// TestSignerSignsOnce drives the signer's Reconcile by hand, in a
// namespace no running controller serves: a CSR that holds a certificate
// is left exactly as it is, and one approved but not signed (a leader
// killed between the two writes) is signed by the next reconcile.
func TestSignerSignsOnce(t *testing.T) {
	e := startEnv(t)
	ns := e.namespace(t)
	f := e.newFixture(t, ns, parseSpec(t, kubeSpec))
	s := &signer{c: e.Client, ns: servedNS{ns}, authorities: &authorities{reader: e.Client}, expand: pki.New}
	node2 := e.agent(t, v1alpha1.NodeUser("etcd-node-2"))
	ctx := context.Background()
	reconcileCSR := func(name string) *certificatesv1.CertificateSigningRequest {
		t.Helper()
		if _, err := s.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			t.Fatalf("reconcile %s: %v", name, err)
		}
		var csr certificatesv1.CertificateSigningRequest
		must(t, e.Client.Get(ctx, client.ObjectKey{Name: name}, &csr))
		return &csr
	}

	r, _ := f.honest(t, "etcd-node-2/etcd-peer")
	r.name = "node-2-peer"
	submit(t, node2, r)
	first := reconcileCSR(r.name)
	if len(first.Status.Certificate) == 0 {
		t.Fatalf("not signed: %+v", first.Status.Conditions)
	}
	again := reconcileCSR(r.name)
	if string(again.Status.Certificate) != string(first.Status.Certificate) || again.ResourceVersion != first.ResourceVersion {
		t.Errorf("a signed CSR was written again: resourceVersion %s -> %s", first.ResourceVersion, again.ResourceVersion)
	}

	r, _ = f.honest(t, "etcd-node-2/etcd-healthcheck-client")
	r.name = "node-2-healthcheck"
	csr := submit(t, node2, r)
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: ReasonApproved, LastUpdateTime: metav1.Now()})
	must(t, e.Client.SubResource("approval").Update(ctx, csr))
	signed := reconcileCSR(r.name)
	if len(signed.Status.Certificate) == 0 {
		t.Fatalf("an approved, unsigned CSR was not signed: %+v", signed.Status.Conditions)
	}
	if cn := parseCert(t, signed.Status.Certificate).Subject.CommonName; cn != "kube-etcd-healthcheck-client" {
		t.Errorf("signed CN %q", cn)
	}

	// Approved by someone else, but not what the spec says: never
	// signed, marked Failed with the reason.
	r, _ = f.honest(t, "etcd-node-2/etcd-server")
	r.name, r.target = "node-2-server-bad-usage", ""
	r.usages = r.usages[1:]
	csr = submit(t, node2, r)
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "ByHand", LastUpdateTime: metav1.Now()})
	must(t, e.Client.SubResource("approval").Update(ctx, csr))
	failed := reconcileCSR(r.name)
	if c, ok := condition(failed, certificatesv1.CertificateFailed); !ok || len(failed.Status.Certificate) > 0 || c.Message != `usage "digital signature" is missing: the spec gives etcd-node-2/etcd-server digital signature, key encipherment, server auth, client auth` {
		t.Errorf("conditions %+v, certificate %d bytes", failed.Status.Conditions, len(failed.Status.Certificate))
	}
}
