package testpki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestLeafChainsToCA(t *testing.T) {
	ca := NewCA(t, "test-ca")
	c := ca.Leaf(t, LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1", "etcd-1.example"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if len(c.Leaf.IPAddresses) != 1 || len(c.Leaf.DNSNames) != 1 {
		t.Errorf("SANs %v %v", c.Leaf.IPAddresses, c.Leaf.DNSNames)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Error(err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: NewCA(t, "other").Pool()}); err == nil {
		t.Error("verifies against a stranger CA")
	}

	inter := ca.Leaf(t, LeafOptions{CN: "intermediate", IsCA: true})
	sub := &CA{Cert: inter.Leaf, Key: inter.PrivateKey.(crypto.Signer)}
	leaf := sub.Leaf(t, LeafOptions{CN: "x", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pool := x509.NewCertPool()
	pool.AddCert(inter.Leaf)
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
}

func TestFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t, "test-ca")
	caFile := ca.WriteCert(t, dir, "ca")
	crt, key := WritePair(t, dir, "ca", tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key})
	if crt != caFile {
		t.Errorf("paths %s, %s", crt, caFile)
	}
	if got := LoadCA(t, crt, key); !got.Cert.Equal(ca.Cert) {
		t.Error("LoadCA read another certificate")
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(crt); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("cert mode %v, %v", fi.Mode(), err)
	}
	if _, err := tls.LoadX509KeyPair(WritePair(t, dir, "leaf", ca.Leaf(t, LeafOptions{CN: "leaf"}))); err != nil {
		t.Error(err)
	}
}

func TestListeners(t *testing.T) {
	c, err := net.DialTimeout("tcp", BlackHole(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("black hole read: %v, want a timeout", err)
	}

	resp, err := http.Get("http://" + PlainHTTP(t))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("plain HTTP status %d", resp.StatusCode)
	}

	if _, err := net.DialTimeout("tcp", ClosedPort(t), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed port dial: %v, want connection refused", err)
	}
}
