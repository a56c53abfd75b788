package controller

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/pki"
)

// errNoCRL means the trust ConfigMap holds no CRL. The controller never
// signs a first one: the revocations live in the PKI directory's
// revoked.json, which `etcdpki export` turned into crl.der, and an empty
// CRL in place of a lost one would un-revoke every serial on every
// member.
var errNoCRL = errors.New("the trust ConfigMap has no crl.der: run etcdpki export to hand over the PKI's CRL")

// ResignCRL is the trust upkeep's CRL step, as the CLI's (issue.KeepCRL):
// when der, signed by a, is past half its life (pki.CRLStale) it is
// signed again with the same entries and the next CRL number, valid for
// validity from now. It returns the new CRL and why it was signed, or
// (nil, "") when der is current. A CRL that does not parse or that
// another CA signed is an error: it is not the controller's to replace
// (a CA rotation publishes its own).
func ResignCRL(a *ca.CA, der []byte, validity time.Duration, now time.Time) ([]byte, string, error) {
	if len(der) == 0 {
		return nil, "", errNoCRL
	}
	l, err := pki.ParseCRL(der)
	if err != nil {
		return nil, "", fmt.Errorf("crl.der: %w", err)
	}
	if !crlSignedBy(l, a) {
		return nil, "", fmt.Errorf("crl.der is not signed by CA %q: the controller re-signs only its own CA's CRL", a.Cert.Subject.CommonName)
	}
	if !pki.CRLStale(&pki.CRL{ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate}, now) {
		return nil, "", nil
	}
	entries := make([]ca.Revocation, 0, len(l.RevokedCertificateEntries))
	for _, e := range l.RevokedCertificateEntries {
		entries = append(entries, ca.Revocation{Serial: e.SerialNumber, Reason: e.ReasonCode, When: e.RevocationTime})
	}
	number := big.NewInt(1)
	if l.Number != nil {
		number.Add(l.Number, number)
	}
	next, err := a.SignCRL(entries, number, validity, now)
	if err != nil {
		return nil, "", err
	}
	return next, fmt.Sprintf("past half its life (next update %s)", l.NextUpdate.UTC().Format(time.RFC3339)), nil
}

// crlSignedBy checks the CRL's signature against the CA. A CA without
// the cRLSign usage (kubeadm's) still signs its CRL (ca.SignCRL), so the
// check is made as if it had it, as the signing was.
func crlSignedBy(l *x509.RevocationList, a *ca.CA) bool {
	issuer := a.Cert
	if !a.MaySignCRL() {
		cp := *a.Cert
		cp.KeyUsage |= x509.KeyUsageCRLSign
		issuer = &cp
	}
	return l.CheckSignatureFrom(issuer) == nil
}
