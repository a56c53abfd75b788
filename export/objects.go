package export

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// write is one object to create or update: mutate makes obj (fresh, or
// as read from the cluster) what the PKI says, and what describes the
// content for the printed line.
type write struct {
	kind   string
	obj    client.Object
	mutate func() error
	what   string
}

// managed marks an object as written by export, keeping other labels.
func managed(m *metav1.ObjectMeta) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels["app.kubernetes.io/managed-by"] = ManagedBy
}

// writes are the CA Secret, the trust ConfigMap and the EtcdCluster, in
// that order. Each mutate replaces the whole content export owns, so an
// object changed by hand is put back, and a key left in a Secret whose
// CA key has since moved to a token is removed.
func (ex *existing) writes(src *source) []write {
	ns, name := src.cluster.Namespace, src.cluster.Name
	a := src.ca

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.CASecretName(name)}}
	data := map[string][]byte{v1alpha1.SecretCert: a.CertPEM}
	what := caLine(a.Cert) + ", key in " + v1alpha1.SecretKey
	if a.Token != nil {
		data[v1alpha1.SecretKeyURI] = []byte(a.Token.String())
		what = caLine(a.Cert) + ", key in a token (" + v1alpha1.SecretKeyURI + " " + a.Token.Where() + "), no key"
	} else {
		data[v1alpha1.SecretKey] = a.KeyPEM
	}
	secretW := write{kind: "Secret", obj: secret, what: what, mutate: func() error {
		managed(&secret.ObjectMeta)
		if secret.CreationTimestamp.IsZero() {
			secret.Type = secretType(a)
		}
		secret.Data = data
		secret.StringData = nil
		return nil
	}}

	crl, number := src.crlDER, src.crl.Number
	crlWhat := fmt.Sprintf("%s, %s number %s revoking %d", v1alpha1.TrustCA, v1alpha1.TrustCRL, number, len(src.crl.List.RevokedCertificateEntries))
	if ex.keepCRL != nil {
		crl = ex.keepCRL
		crlWhat = fmt.Sprintf("%s, %s kept: its number %s is newer than the PKI's (%s) and it revokes all the PKI's CRL does", v1alpha1.TrustCA, v1alpha1.TrustCRL, ex.keptNumber, number)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.TrustConfigMapName(name)}}
	cmW := write{kind: "ConfigMap", obj: cm, what: crlWhat, mutate: func() error {
		managed(&cm.ObjectMeta)
		cm.Data = map[string]string{v1alpha1.TrustCA: string(a.CertPEM)}
		cm.BinaryData = map[string][]byte{v1alpha1.TrustCRL: crl}
		return nil
	}}

	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	want := src.cluster.Spec
	ecW := write{kind: "EtcdCluster", obj: ec, mutate: func() error {
		managed(&ec.ObjectMeta)
		ec.Spec = *want.DeepCopy()
		return nil
	}, what: fmt.Sprintf("spec from %s: %d nodes, %d certificates", specName(src.inv.Spec), len(src.inv.Spec.Nodes), len(src.inv.Targets))}
	return []write{secretW, cmW, ecW}
}
