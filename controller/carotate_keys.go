package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// caKeys are the CAs the CA Secret holds during a rotation: the one in
// effect for signing (tls.*), the next (next-*, from prepare until
// reissue's swap) and the old (old-*, from the swap until finish is
// proven). The CA key stays where it lives: in the Secret, or in the
// token the key-uri names (ca.CreateNext makes the next key there).
type caKeys struct {
	secret             *corev1.Secret
	current, next, old *ca.CA
}

// loadKeys reads the CA Secret past the cache and opens every CA in it.
func (r *clusterReconciler) loadKeys(ctx context.Context, cl *v1alpha1.EtcdCluster) (*caKeys, error) {
	key := types.NamespacedName{Namespace: cl.Namespace, Name: v1alpha1.CASecretName(cl.Name)}
	var s corev1.Secret
	if err := r.reader.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("CA Secret %s: %w", key, err)
	}
	k := &caKeys{secret: &s}
	var err error
	if k.current, err = openCA(&s, v1alpha1.SecretCert, v1alpha1.SecretKey, v1alpha1.SecretKeyURI); err != nil {
		return nil, err
	}
	if k.next, err = openCA(&s, v1alpha1.SecretNextCert, v1alpha1.SecretNextKey, v1alpha1.SecretNextKeyURI); err != nil {
		return nil, err
	}
	if k.old, err = openCA(&s, v1alpha1.SecretOldCert, v1alpha1.SecretOldKey, v1alpha1.SecretOldKeyURI); err != nil {
		return nil, err
	}
	return k, nil
}

// openCA opens the CA under the three keys of s; nil when the
// certificate key is absent.
func openCA(s *corev1.Secret, certKey, keyKey, uriKey string) (*ca.CA, error) {
	cert, ok := s.Data[certKey]
	if !ok {
		return nil, nil
	}
	where := "Secret " + s.Namespace + "/" + s.Name + " "
	var keyPEM, uri []byte
	if u, ok := s.Data[uriKey]; ok {
		uri = u
	} else {
		keyPEM = s.Data[keyKey]
	}
	return ca.ParseStore(cert, keyPEM, uri, where+certKey, where+keyKey, where+uriKey)
}

// put stores c under the keys of one role (certKey and keyKey, or uriKey
// for a token key), removing the other form.
func put(data map[string][]byte, c *ca.CA, certKey, keyKey, uriKey string) {
	data[certKey] = c.CertPEM
	if c.Token != nil {
		data[uriKey] = []byte(c.Token.String())
		delete(data, keyKey)
		return
	}
	data[keyKey] = c.KeyPEM
	delete(data, uriKey)
}

func drop(data map[string][]byte, keys ...string) {
	for _, k := range keys {
		delete(data, k)
	}
}

// newCA and oldCA are the rotation's two CAs, whichever keys hold them.
func (k *caKeys) newCA() *ca.CA {
	if k.next != nil {
		return k.next
	}
	return k.current
}

func (k *caKeys) oldCA() *ca.CA {
	if k.old != nil {
		return k.old
	}
	return k.current
}

// swapped says reissue's swap happened: the new CA signs.
func (k *caKeys) swapped() bool { return k.next == nil && k.old != nil }

// roots are every CA the rotation knows: members serve leaves of either.
func (k *caKeys) roots() []*x509.Certificate {
	out := []*x509.Certificate{k.current.Cert}
	for _, c := range []*ca.CA{k.next, k.old} {
		if c != nil {
			out = append(out, c.Cert)
		}
	}
	return out
}

// probeConfig is a client configuration presenting a probe certificate
// of signer, minted in memory and never written, trusting every CA of
// the rotation for what the members serve.
func (k *caKeys) probeConfig(signer *ca.CA, now time.Time) (*tls.Config, error) {
	pair, err := signer.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	return probe.ClientConfig(probe.CertPool(k.roots()), &pair), nil
}

// resignCRLWith signs the CRL's entries again with next (number + 1),
// so that once the trust holds only the new CA the members' CRL is one
// it signed. A CRL next signed already is returned as it is.
func resignCRLWith(next *ca.CA, der []byte, validity time.Duration, now time.Time) ([]byte, bool, error) {
	l, err := pki.ParseCRL(der)
	if err != nil {
		return nil, false, fmt.Errorf("crl.der: %w", err)
	}
	if crlSignedBy(l, next) {
		return der, false, nil
	}
	entries := make([]ca.Revocation, 0, len(l.RevokedCertificateEntries))
	for _, e := range l.RevokedCertificateEntries {
		entries = append(entries, ca.Revocation{Serial: e.SerialNumber, Reason: e.ReasonCode, When: e.RevocationTime})
	}
	number := big.NewInt(1)
	if l.Number != nil {
		number.Add(l.Number, number)
	}
	out, err := next.SignCRL(entries, number, validity, now)
	return out, true, err
}

// rotationOwnsTrust says a CA rotation past prepare sets the trust
// ConfigMap's ca.crt (both CAs, then the new one): the trust upkeep
// leaves it alone until the rotation is done.
func rotationOwnsTrust(cl *v1alpha1.EtcdCluster) bool {
	st := cl.Status.CARotation
	return st != nil && st.Stage != "" && st.Stage != v1alpha1.CAStagePrepare && st.Stage != v1alpha1.CAStageDone
}

// rotationRoots adds to the prober's roots the other CA of a rotation in
// progress: between reissue's swap and the last renewal the members
// serve leaves of the old CA while the probe comes from the new one.
func (r *clusterReconciler) rotationRoots(ctx context.Context, cl *v1alpha1.EtcdCluster, cfg *tls.Config) {
	if st := cl.Status.CARotation; st == nil || st.Stage == v1alpha1.CAStageDone || cfg.RootCAs == nil {
		return
	}
	k, err := r.loadKeys(ctx, cl)
	if err != nil {
		return
	}
	for _, c := range k.roots() {
		cfg.RootCAs.AddCert(c)
	}
}
