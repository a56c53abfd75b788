package adopt_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// TestAdoptRefusesAWeakRSACA adopts a CA whose key is RSA-1024: bad input
// (exit 2) naming the file, the key size and the minimum, before any
// signing (cfssl would sign with SHA-1, which Go refuses, and that was an
// operation failure, exit 1), and nothing written.
func TestAdoptRefusesAWeakRSACA(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weak-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	pkiDir := filepath.Join(dir, "pki")
	s, err := cluster.Parse([]byte("nodes:\n  - {name: etcd-1, ips: [127.0.0.1]}\n"), "", cluster.Options{PKIDir: pkiDir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = adopt.Run(context.Background(), pki.New(s), adopt.Options{CACert: certPath, CAKey: keyPath, Timeout: time.Second})
	var ic input.Coder
	if !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode {
		t.Fatalf("adopt: %v, want bad input (exit 2)", err)
	}
	for _, want := range []string{certPath, "RSA-1024", "too weak", "at least 2048 bits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("adopt: %q does not say %q", err, want)
		}
	}
	if _, err := os.Lstat(pkiDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after the refusal (%v)", pkiDir, err)
	}
}
