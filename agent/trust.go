package agent

import (
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// checkNewCAs refuses a ca.crt from the trust ConfigMap that brings a CA
// the host does not trust yet, unless it is the new CA of the CA
// rotation under way (status.caRotation.newCA, stage before done): a
// ConfigMap is writable by more identities than the CA Secret, and every
// CA in ca.crt may sign clients and peers the member accepts. A bundle
// without a ca.crt takes the cluster's trust, as a join's SeedTrust does.
func checkNewCAs(b pki.Bundle, caPEM []byte, rot *v1alpha1.CARotationStatus) error {
	have, err := pki.BundleCAs(b.CADir)
	if err != nil || len(have) == 0 {
		return err
	}
	cas, err := certx.ParseCertificates(caPEM)
	if err != nil {
		return nil // issue.InstallCABundle refuses it, saying why
	}
	for _, c := range cas {
		if slices.ContainsFunc(have, c.Equal) || rotatingTo(rot, c) {
			continue
		}
		return fmt.Errorf("new %s for %s: CA %q (serial %s) is neither in the host's %s nor status.caRotation.newCA of a rotation under way; refusing it",
			pki.CAFile, b.Owner, c.Subject.CommonName, certx.Serial(c), pki.CAFile)
	}
	return nil
}

func rotatingTo(rot *v1alpha1.CARotationStatus, c *x509.Certificate) bool {
	return rot != nil && rot.Stage != v1alpha1.CAStageDone && rot.NewCA != "" && rot.NewCA == certx.Serial(c)
}

// SeedTrust gives a fresh bundle caPEM and crlDER, the trust ConfigMap's
// (issue.SeedTrust leaves a bundle with a ca.crt alone).
func (a *Agent) SeedTrust(caPEM, crlDER []byte, rot *v1alpha1.CARotationStatus) (bool, error) {
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	if have, err := pki.BundleCAs(a.Bundle.CADir); err != nil || len(have) > 0 {
		return false, err
	}
	if err := checkSeedCAs(a.Bundle, caPEM, crlDER, rot); err != nil {
		return false, err
	}
	return issue.SeedTrust(a.Bundle, caPEM, crlDER)
}

// checkSeedCAs refuses a fresh bundle's trust in which a CA did not sign
// the CRL beside it and is not the old or new CA of the CA rotation under
// way: outside a rotation the cluster's one CA signs its CRL, and a CA
// added by a ConfigMap writer would be trusted for every client and peer.
func checkSeedCAs(b pki.Bundle, caPEM, crlDER []byte, rot *v1alpha1.CARotationStatus) error {
	cas, err := certx.ParseCertificates(caPEM)
	l, lerr := pki.ParseCRL(crlDER)
	if err != nil || lerr != nil {
		return nil // issue.SeedTrust refuses them, saying why
	}
	for _, c := range cas {
		inRotation := rotatingTo(rot, c) || rot != nil && rot.Stage != v1alpha1.CAStageDone && rot.OldCA == certx.Serial(c)
		if l.CheckSignatureFrom(c) != nil && !inRotation {
			return fmt.Errorf("%s for %s: CA %q (serial %s) did not sign the CRL beside it and is not a CA of the rotation under way; refusing both",
				pki.CAFile, b.Owner, c.Subject.CommonName, certx.Serial(c))
		}
	}
	return nil
}
