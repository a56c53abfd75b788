package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"
)

// A twin differs from its certificate only in serial and key: subject,
// every kind of SAN, key usage, extended key usages and validity are the
// same, and it is signed by the same CA.
func TestTwinDiffersOnlyInSerialAndKey(t *testing.T) {
	now := time.Now()
	a := newCA(t, 24*time.Hour)
	orig := leafFrom(t, a, &x509.Certificate{
		SerialNumber:   big.NewInt(0x1234),
		Subject:        pkix.Name{CommonName: "etcd-gw", Organization: []string{"ops"}, OrganizationalUnit: []string{"etcd"}},
		NotBefore:      now.Add(-time.Minute).Truncate(time.Second),
		NotAfter:       now.Add(time.Hour).Truncate(time.Second),
		DNSNames:       []string{"gw.example.test"},
		IPAddresses:    []net.IP{net.ParseIP("127.0.0.9")},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "example.test", Path: "/etcd-gw"}},
		EmailAddresses: []string{"ops@example.test"},
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	pair, err := a.Twin(orig)
	if err != nil {
		t.Fatal(err)
	}
	tw := pair.Leaf
	if tw.SerialNumber.Cmp(orig.SerialNumber) == 0 {
		t.Error("the twin has the original's serial")
	}
	if bytes.Equal(tw.RawSubjectPublicKeyInfo, orig.RawSubjectPublicKeyInfo) {
		t.Error("the twin has the original's key")
	}
	if !bytes.Equal(tw.RawSubject, orig.RawSubject) {
		t.Errorf("subject %v, want %v", tw.Subject, orig.Subject)
	}
	if !slices.Equal(tw.DNSNames, orig.DNSNames) || !slices.EqualFunc(tw.IPAddresses, orig.IPAddresses, net.IP.Equal) ||
		!slices.Equal(tw.EmailAddresses, orig.EmailAddresses) || len(tw.URIs) != 1 || tw.URIs[0].String() != orig.URIs[0].String() {
		t.Errorf("SANs %v %v %v %v, want %v %v %v %v", tw.DNSNames, tw.IPAddresses, tw.EmailAddresses, tw.URIs,
			orig.DNSNames, orig.IPAddresses, orig.EmailAddresses, orig.URIs)
	}
	if tw.KeyUsage != orig.KeyUsage || !slices.Equal(tw.ExtKeyUsage, orig.ExtKeyUsage) {
		t.Errorf("usages %v %v, want %v %v", tw.KeyUsage, tw.ExtKeyUsage, orig.KeyUsage, orig.ExtKeyUsage)
	}
	if !tw.NotBefore.Equal(orig.NotBefore) || !tw.NotAfter.Equal(orig.NotAfter) {
		t.Errorf("valid %s..%s, want %s..%s", tw.NotBefore, tw.NotAfter, orig.NotBefore, orig.NotAfter)
	}
	if err := a.Verify(tw, x509.ExtKeyUsageClientAuth, now); err != nil {
		t.Errorf("the twin does not verify as a client of the CA: %v", err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool(a), DNSName: "gw.example.test", CurrentTime: now}); err != nil {
		t.Errorf("the twin does not verify for the original's DNS name: %v", err)
	}
}

// A twin's validity stays inside its CA's, as every leaf's does; an
// expired original has an expired twin (so that a port refusing the
// original for its expiry refuses the twin too).
func TestTwinValidityClampedToTheCA(t *testing.T) {
	now := time.Now()
	short, long := newCA(t, 2*time.Hour), newCA(t, 48*time.Hour)
	far := leafFrom(t, long, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "far"},
		NotBefore: long.Cert.NotBefore, NotAfter: now.Add(40 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err := short.Twin(far)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf.NotAfter.After(short.Cert.NotAfter) || pair.Leaf.NotBefore.Before(short.Cert.NotBefore) {
		t.Errorf("twin valid %s..%s, outside its CA's %s..%s", pair.Leaf.NotBefore, pair.Leaf.NotAfter, short.Cert.NotBefore, short.Cert.NotAfter)
	}
	expired := leafFrom(t, long, &x509.Certificate{
		SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: now.Add(-time.Minute * 4), NotAfter: now.Add(-time.Minute),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err = long.Twin(expired)
	if err != nil {
		t.Fatal(err)
	}
	if err := long.Verify(pair.Leaf, x509.ExtKeyUsageClientAuth, now); err == nil {
		t.Error("the twin of an expired certificate verifies now")
	}
}

// leafFrom signs tmpl with a's key, as another tool might have.
func leafFrom(t *testing.T, a *CA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(a *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}
