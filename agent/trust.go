package agent

import (
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/certx"
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
