// Package certx holds the plain x509 and PEM helpers every layer reads
// certificates and keys with: parsing a private key, matching it to a
// certificate, listing SANs, describing a key. They carry no CA policy
// (that is package ca), so internal/probe can use them without importing
// ca.
package certx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ParseKey parses the first PEM private key in data (PKCS#1, PKCS#8 or
// SEC 1), skipping the "EC PARAMETERS" block openssl writes before one.
// It uses the standard library rather than cfssl, whose errors are JSON
// documents that make no sense on a terminal.
func ParseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			// The ASN.1 detail means nothing to an operator, and some of
			// it is a Go struct dump.
			return nil, fmt.Errorf("malformed %s (the PEM block does not decode)", strings.ToLower(b.Type))
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parse private key: %T cannot sign", k)
		}
		return signer, nil
	}
}

// KeyMatches reports whether pub is the certificate's public key.
func KeyMatches(cert *x509.Certificate, pub crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := cert.PublicKey.(equaler)
	return ok && e.Equal(pub)
}

// SANs lists a certificate's IP and DNS subject alternative names as
// strings: IPs first, then DNS names, each in certificate order.
func SANs(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return append(out, c.DNSNames...)
}

// KeyDescription renders a public key as "ecdsa-256" or "rsa-2048".
func KeyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ecdsa-%d", k.Curve.Params().BitSize)
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// ErrNoCertificates means data meant to hold certificates holds no PEM
// certificate.
var ErrNoCertificates = errors.New("no PEM certificate found")

// ParseCertificates parses every CERTIFICATE block of PEM data, in order,
// skipping other blocks. Data with none, or with a block that does not
// parse, is an error. A CA file holds one CA, or two during a staged CA
// rotation; a chain file holds a leaf and its issuers.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificates
	}
	return certs, nil
}

// Serial renders a certificate serial as lower-case hex, as openssl does:
// the one form every message, journal and listing uses.
func Serial(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }
