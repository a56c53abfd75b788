// Package testpki holds test-only helpers for making throwaway CAs and
// certificates with crypto/x509, writing them as PEM files, and opening
// loopback listeners that misbehave in known ways. Everything is made
// inside the test, so no committed certificate ever expires under the
// build.
//
// It is never imported by production code.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority that signs test certificates. NewCA makes
// a fresh one; LoadCA reads one from disk, such as the CA that etcdpki init
// wrote; a CA can also be put together from any certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 CA named cn, valid from an hour ago
// for a day, that nothing trusts until the test says so.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	return &CA{Cert: create(t, tmpl, tmpl, key, key), Key: key}
}

// LoadCA reads a CA certificate and its private key (PKCS #8, SEC 1 or
// PKCS #1 PEM) from files.
func LoadCA(t testing.TB, certFile, keyFile string) *CA {
	t.Helper()
	cert := ReadCert(t, certFile)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(data)
	if err != nil {
		t.Fatalf("%s: %v", keyFile, err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := cert.PublicKey.(equaler); !ok || !pub.Equal(key.Public()) {
		t.Fatalf("%s does not belong to %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key}
}

// Pool returns a pool that trusts only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return CertPEM(ca.Cert.Raw) }

// WriteCert writes the CA certificate as dir/name.crt (mode 0644) and
// returns its path.
func (ca *CA) WriteCert(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".crt")
	WriteFile(t, p, ca.CertPEM(), 0o644)
	return p
}

// LeafOptions describes a certificate for (*CA).Leaf. Zero values give a
// certificate with no names and no extended key usage, valid from an hour
// ago for 200 days (well outside any renew-before window).
type LeafOptions struct {
	CN string
	// Hosts are the subject alternative names: each one that parses as
	// an IP address becomes an IP SAN, any other a DNS SAN.
	Hosts     []string
	EKU       []x509.ExtKeyUsage
	NotBefore time.Time
	NotAfter  time.Time
	// IsCA makes an intermediate CA: basicConstraints CA:TRUE and
	// keyCertSign.
	IsCA bool
}

// Leaf issues a certificate with a new ECDSA P-256 key, signed by ca. The
// result has Leaf set and can go straight into a tls.Config.
func (ca *CA) Leaf(t testing.TB, o LeafOptions) tls.Certificate {
	t.Helper()
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(200 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CN},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  o.EKU,
	}
	if o.IsCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key := newKey(t)
	c := create(t, tmpl, ca.Cert, key, ca.Key)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// WritePair writes c's certificate as dir/name.crt (mode 0644) and its key
// as dir/name.key (PKCS #8, mode 0600), and returns the two paths.
func WritePair(t testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	WriteFile(t, certFile, CertPEM(c.Certificate[0]), 0o644)
	WriteFile(t, keyFile, KeyPEM(t, c.PrivateKey), 0o600)
	return certFile, keyFile
}

// CertPEM encodes a DER certificate as a PEM CERTIFICATE block.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyPEM encodes a private key as a PKCS #8 PEM PRIVATE KEY block.
func KeyPEM(t testing.TB, key crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ReadCert reads the first certificate in a PEM file.
func ReadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			t.Fatalf("%s: no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return c
		}
	}
}

// WriteFile writes data to path with exactly the given mode, whatever the
// umask or the mode of a file already there.
func WriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

var maxSerial = new(big.Int).Lsh(big.NewInt(1), 127)

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, maxSerial)
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1)) // positive, as RFC 5280 wants
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
			return nil, errors.New("PKCS #8 key is not a signer")
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, errors.New("private key is not PKCS #8, SEC 1 or PKCS #1")
	}
}
