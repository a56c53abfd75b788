package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
)

// signer issues test certificates the catalogue never would (expired,
// wrong usage, missing SANs) from a CA: the cluster's own or a stranger.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// loadSigner loads the CA that etcdpki init created.
func loadSigner(t *testing.T, certFile, keyFile string) *signer {
	t.Helper()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Parse(certPEM, keyPEM, certFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ca.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{cert: c.Cert, key: key}
}

// newSigner makes a fresh CA that nothing trusts.
func newSigner(t *testing.T, cn string) *signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &signer{cert: c, key: key}
}

type leaf struct {
	cn        string
	hosts     []string
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

// sign writes a certificate and key for l into dir as name.crt/name.key
// (key mode 0600) and returns the paths.
func (s *signer) sign(t *testing.T, dir, name string, l leaf) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if l.notBefore.IsZero() {
		l.notBefore = time.Now().Add(-time.Hour)
	}
	if l.notAfter.IsZero() {
		l.notAfter = time.Now().Add(200 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: l.cn},
		NotBefore: l.notBefore, NotAfter: l.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: l.eku,
	}
	for _, h := range l.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, &key.PublicKey, s.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return crt, kf
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// blackHole listens on loopback, accepts TCP and never says a word.
func blackHole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "https://" + l.Addr().String()
}

// plainHTTP serves plain HTTP on loopback: a wrong port, or an etcd
// without TLS.
func plainHTTP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// otherTLSService serves HTTPS (HTTP/2 included) on loopback with a
// certificate from the given CA: a TLS endpoint that is not etcd, such as
// another service's port typed by mistake.
func otherTLSService(t *testing.T, s *signer) string {
	t.Helper()
	dir := t.TempDir()
	crt, key := s.sign(t, dir, "web", leaf{cn: "web", hosts: []string{"127.0.0.1"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.ServeTLS(l, crt, key)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}
