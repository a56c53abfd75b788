// Package kubeadmcerts writes an external etcd cluster's certificates
// exactly as `kubeadm init phase certs etcd-*` makes them (kubeadm's
// profiles, RSA 2048 keys in PKCS#1, its file names), and under the
// names the cfssl recipe and kubespray use, for adopt's tests. Everything
// is made inside the test with crypto/x509.
//
// It is never imported by production code.
package kubeadmcerts

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Validities as kubeadm's constants: CertificateValidity (one year) for
// leaves, CACertificateValidityPeriod (ten years) for the CA.
const (
	LeafValidity = 365 * 24 * time.Hour
	CAValidity   = 10 * 365 * 24 * time.Hour
)

// CA is kubeadm's etcd CA.
type CA struct {
	Cert    *x509.Certificate
	Key     *rsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// Profile is one leaf certificate: kubeadm's certlist entries.
type Profile struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       []x509.ExtKeyUsage
}

// Server is kubeadm's etcd/server (and etcd/peer) profile for a node:
// CN the node name, SANs the node name, localhost, its IP, 127.0.0.1 and
// ::1, serverAuth and clientAuth.
func Server(node string, ip net.IP) Profile {
	return Profile{CommonName: node, DNSNames: []string{node, "localhost"},
		IPs:    []net.IP{ip, net.ParseIP("127.0.0.1"), net.IPv6loopback},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
}

// Healthcheck is etcd/healthcheck-client.
func Healthcheck() Profile {
	return Profile{CommonName: "kube-etcd-healthcheck-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// APIServerClient is apiserver-etcd-client.
func APIServerClient() Profile {
	return Profile{CommonName: "kube-apiserver-etcd-client", Organization: []string{"system:masters"}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

func key(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func encode(t testing.TB, der []byte, k *rsa.PrivateKey) (certPEM, keyPEM []byte) {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// NewCA makes kubeadm's etcd CA: CN etcd-ca, ten years, keyCertSign.
func NewCA(t testing.TB) *CA {
	t.Helper()
	k := key(t)
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "etcd-ca"}, DNSNames: []string{"etcd-ca"},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	certPEM, keyPEM := encode(t, der, k)
	return &CA{Cert: c, Key: k, CertPEM: certPEM, KeyPEM: keyPEM}
}

// Sign issues a leaf as kubeadm's NewSignedCert does: one year,
// digitalSignature and keyEncipherment, the profile's EKUs and SANs.
func (a *CA) Sign(t testing.TB, p Profile) (certPEM, keyPEM []byte) {
	t.Helper()
	k := key(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: p.CommonName, Organization: p.Organization},
		DNSNames: p.DNSNames, IPAddresses: p.IPs,
		NotBefore: a.Cert.NotBefore, NotAfter: time.Now().UTC().Add(LeafValidity),
		KeyUsage:    x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: p.Usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &k.PublicKey, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	return encode(t, der, k)
}

// Write writes data to path, making its directory (0700); keys 0600.
func Write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// WritePair signs p and writes it to certPath and keyPath.
func (a *CA) WritePair(t testing.TB, certPath, keyPath string, p Profile) {
	t.Helper()
	c, k := a.Sign(t, p)
	Write(t, certPath, c)
	Write(t, keyPath, k)
}

// WriteNode writes what `kubeadm init phase certs etcd-ca etcd-server
// etcd-peer etcd-healthcheck-client` leaves in a node's
// /etc/kubernetes/pki (pkiDir): etcd/ca.{crt,key}, etcd/server,
// etcd/peer and etcd/healthcheck-client.
func (a *CA) WriteNode(t testing.TB, pkiDir, node string, ip net.IP) {
	t.Helper()
	a.WriteNodeWith(t, pkiDir, Server(node, ip), Server(node, ip))
}

// WriteNodeWith is WriteNode with the server and peer profiles given.
func (a *CA) WriteNodeWith(t testing.TB, pkiDir string, server, peer Profile) {
	t.Helper()
	d := filepath.Join(pkiDir, "etcd")
	Write(t, filepath.Join(d, "ca.crt"), a.CertPEM)
	Write(t, filepath.Join(d, "ca.key"), a.KeyPEM)
	a.WritePair(t, filepath.Join(d, "server.crt"), filepath.Join(d, "server.key"), server)
	a.WritePair(t, filepath.Join(d, "peer.crt"), filepath.Join(d, "peer.key"), peer)
	a.WritePair(t, filepath.Join(d, "healthcheck-client.crt"), filepath.Join(d, "healthcheck-client.key"), Healthcheck())
}

// WriteAPIServer writes a control-plane node's /etc/kubernetes/pki
// (pkiDir) as kubeadm does for external etcd: etcd/ca.crt and
// apiserver-etcd-client.{crt,key}.
func (a *CA) WriteAPIServer(t testing.TB, pkiDir string) {
	t.Helper()
	Write(t, filepath.Join(pkiDir, "etcd", "ca.crt"), a.CertPEM)
	a.WritePair(t, filepath.Join(pkiDir, "apiserver-etcd-client.crt"), filepath.Join(pkiDir, "apiserver-etcd-client.key"), APIServerClient())
}
