package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
)

// Revocation is one entry of a CRL: a serial this CA issued, why and when
// it was revoked.
type Revocation struct {
	Serial *big.Int
	// Reason is an RFC 5280 reason code (x509's ReasonCode values).
	Reason int
	When   time.Time
}

// SignCRL signs a DER certificate revocation list with the CA's key (through
// its crypto.Signer, wherever the key lives): thisUpdate is now (back-dated
// by Backdate, for members whose clock runs behind), nextUpdate now +
// validity, never past the CA's own notAfter. number is the CRL number,
// which must grow with every CRL the CA signs.
func (c *CA) SignCRL(entries []Revocation, number *big.Int, validity time.Duration, now time.Time) ([]byte, error) {
	if validity < time.Second {
		return nil, input.Errorf("CRL validity %s is shorter than a second", validity)
	}
	thisUpdate, nextUpdate := validityWindow(now, validity)
	if thisUpdate.Before(c.Cert.NotBefore) {
		thisUpdate = c.Cert.NotBefore
	}
	if nextUpdate.After(c.Cert.NotAfter) {
		nextUpdate = c.Cert.NotAfter
	}
	tmpl := &x509.RevocationList{Number: number, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, e := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: e.Serial, RevocationTime: e.When.UTC().Truncate(time.Second), ReasonCode: e.Reason,
		})
	}
	issuer := c.Cert
	if !c.MaySignCRL() {
		// A CA made by another tool may lack cRLSign: kubeadm's CAs carry
		// only keyCertSign (with digitalSignature and keyEncipherment).
		// crypto/x509 refuses such an issuer, but etcd compares serials only
		// and checks no signature, so the CRL is still what the members
		// enforce. It is signed by the CA's own key as if the bit were set;
		// a strict RFC 5280 validator would refuse it, and certs list says
		// so. ca rotate replaces the CA with one that has the bit.
		cp := *c.Cert
		cp.KeyUsage |= x509.KeyUsageCRLSign
		issuer = &cp
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign CRL with CA %q: %w", c.Cert.Subject.CommonName, err)
	}
	// DER, not PEM: etcd hands the file's bytes to
	// x509.ParseRevocationList, which takes DER only, and a CRL it cannot
	// parse makes it refuse every connection.
	return der, nil
}

// ProbeWithSerial mints, in memory, a client certificate from this CA that
// carries the given serial: etcd compares only serials against its CRL,
// so a handshake presenting it shows whether a member refuses that serial,
// without the revoked certificate's key. It is never written anywhere.
func (c *CA) ProbeWithSerial(serial *big.Int, now time.Time) (tls.Certificate, error) {
	if serial == nil || serial.Sign() <= 0 {
		return tls.Certificate{}, errors.New("probe certificate: serial must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	notBefore, notAfter := validityWindow(now, ProbeValidity)
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: ProbeCommonName},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, key.Public(), c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("probe certificate from CA %q: %w", c.Cert.Subject.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// MaySignCRL reports whether the CA certificate allows CRL signing
// (RFC 5280: no key usage at all, or cRLSign among them). etcdpki's CAs
// do; kubeadm's do not.
func (c *CA) MaySignCRL() bool {
	return c.Cert.KeyUsage == 0 || c.Cert.KeyUsage&x509.KeyUsageCRLSign != 0
}
