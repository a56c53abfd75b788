//go:build !cgo || nopkcs11

package ca

import (
	"errors"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// A build without PKCS#11 still reads a pkcs11: URI, and says in one line,
// exit 2, that it cannot use it; file keys work as ever.
func TestTokenNotCompiled(t *testing.T) {
	u, err := cluster.ParsePKCS11URI("pkcs11:token=etcd;object=etcd-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/etcdpki/pin", false)
	if err != nil {
		t.Fatal(err)
	}
	want := "CA key pkcs11: token etcd, object etcd-ca: PKCS#11 is not compiled into this etcdpki (built without cgo or with the nopkcs11 tag); use a build with cgo"
	file := newCA(t, time.Hour)
	_, openErr := ParseStore(file.CertPEM, nil, []byte(u.String()), "ca.crt", "ca.key", "ca.key.uri")
	_, createErr := Create(cluster.CA{CommonName: "etcd-ca", Key: p256, Validity: time.Hour, Token: u}, time.Now())
	for _, err := range []error{openErr, createErr} {
		var coder input.Coder
		if err == nil || err.Error() != want || !errors.As(err, &coder) || coder.ExitCode() != 2 {
			t.Errorf("got %v, want exit 2 %q", err, want)
		}
	}
	if _, err := ParseStore(file.CertPEM, file.KeyPEM, nil, "ca.crt", "ca.key", ""); err != nil {
		t.Errorf("a file CA key in a build without PKCS#11: %v", err)
	}
}
