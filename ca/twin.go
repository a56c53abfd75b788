package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
)

// Twin mints, in memory, a certificate from this CA that differs from
// cert only in its serial and key: the same subject, SANs (DNS names, IP
// addresses, URIs, email addresses), key usage, extended key usages and
// validity (clamped to the CA's), a fresh random serial and a fresh key.
// It is the control for presenting cert to a member: a port that accepts
// the twin and refuses cert refuses cert for its serial, the CRL's doing,
// and not for anything else about it (etcd's peer port, for one, refuses
// a client certificate whose IP SANs do not name the address it is dialled
// from). It is never written anywhere.
func (c *CA) Twin(cert *x509.Certificate) (tls.Certificate, error) {
	if cert == nil {
		return tls.Certificate{}, errors.New("twin certificate: no certificate")
	}
	// 20 bytes, as cfssl's serials: random, so never one the CRL holds.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return tls.Certificate{}, err
	}
	serial.Add(serial, big.NewInt(1))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	notBefore, notAfter := cert.NotBefore, cert.NotAfter
	if notBefore.Before(c.Cert.NotBefore) {
		notBefore = c.Cert.NotBefore
	}
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// RawSubject keeps the subject byte for byte, attribute order and
		// string types included.
		RawSubject:  cert.RawSubject,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		DNSNames:    cert.DNSNames,
		IPAddresses: cert.IPAddresses,
		URIs:        cert.URIs,
		// EmailAddresses are SANs too.
		EmailAddresses:     cert.EmailAddresses,
		KeyUsage:           cert.KeyUsage,
		ExtKeyUsage:        cert.ExtKeyUsage,
		UnknownExtKeyUsage: cert.UnknownExtKeyUsage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, key.Public(), c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("twin of %q from CA %q: %w", cert.Subject.CommonName, c.Cert.Subject.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
