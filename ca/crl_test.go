package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// TestCRLIsDEREtcdParsesAndSignedByTheCA: the CRL parses with
// x509.ParseRevocationList on the raw bytes (what etcd does on every
// connection), verifies against the CA, carries the entries and number,
// and never outlives the CA.
func TestCRLIsDEREtcdParsesAndSignedByTheCA(t *testing.T) {
	a := newCA(t, 48*time.Hour)
	now := time.Now()
	entries := []Revocation{{Serial: big.NewInt(0xabc), Reason: 1, When: now}}
	der, err := a.SignCRL(entries, big.NewInt(7), 7*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("etcd could not parse it: %v", err)
	}
	if err := l.CheckSignatureFrom(a.Cert); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
	if l.Number.Int64() != 7 || len(l.RevokedCertificateEntries) != 1 || l.RevokedCertificateEntries[0].SerialNumber.Int64() != 0xabc || l.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Errorf("CRL %+v", l)
	}
	if l.NextUpdate.After(a.Cert.NotAfter) {
		t.Errorf("nextUpdate %s is after the CA's end %s", l.NextUpdate, a.Cert.NotAfter)
	}
	if _, err := a.SignCRL(nil, big.NewInt(1), 0, now); err == nil {
		t.Error("a zero validity was accepted")
	}
}

// TestProbeWithSerialCarriesTheSerial: the probe certificate has exactly
// the serial asked for, chains to the CA and is a client certificate.
func TestProbeWithSerialCarriesTheSerial(t *testing.T) {
	a := newCA(t, 48*time.Hour)
	serial, _ := new(big.Int).SetString("7a436eda83122319522cd2f8b4dfc3ededfa9288", 16)
	pair, err := a.ProbeWithSerial(serial, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf.SerialNumber.Cmp(serial) != 0 {
		t.Errorf("serial %x, want %x", pair.Leaf.SerialNumber, serial)
	}
	if err := a.Verify(pair.Leaf, x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
		t.Errorf("probe does not verify as a client certificate: %v", err)
	}
	if _, err := a.ProbeWithSerial(big.NewInt(0), time.Now()); err == nil {
		t.Error("serial 0 was accepted")
	}
}

// TestKubeadmCASignsACRLEtcdEnforces: a CA with kubeadm's key usages
// (keyCertSign, digitalSignature, keyEncipherment; no cRLSign) still signs
// a CRL that etcd parses, made with the CA's own key, so an adopted
// cluster can revoke before its CA is rotated.
func TestKubeadmCASignsACRLEtcdEnforces(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseFiles(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), "ca.crt", "ca.key")
	if err != nil {
		t.Fatal(err)
	}
	if a.MaySignCRL() {
		t.Fatal("a CA without cRLSign reported as allowed to sign CRLs")
	}
	crl, err := a.SignCRL([]Revocation{{Serial: big.NewInt(0xbad), Reason: 1, When: now}}, big.NewInt(1), time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(crl)
	if err != nil {
		t.Fatalf("etcd could not parse it: %v", err)
	}
	if err := a.Cert.CheckSignature(l.SignatureAlgorithm, l.RawTBSRevocationList, l.Signature); err != nil {
		t.Errorf("not signed with the CA's key: %v", err)
	}
	if len(l.RevokedCertificateEntries) != 1 || l.RevokedCertificateEntries[0].SerialNumber.Int64() != 0xbad {
		t.Errorf("entries %+v", l.RevokedCertificateEntries)
	}
}
