//go:build cgo && !nopkcs11

package ca

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
)

// TestTokenPulledMidRunIsNotAKeyMismatch: a token that goes away while
// the CA's key is looked up is reported as the token's failure (exit 1),
// not as a token without the CA's key; a token that answers and really
// holds no key for the CA certificate is the mismatch.
func TestTokenPulledMidRunIsNotAKeyMismatch(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	a, err := Create(tokenSpec(t, tk, "etcd-ca", p256), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(filepath.Dir(tk.Conf), "tokens")
	pulled := tokens + ".pulled"
	afterSession = func() {
		afterSession = nil
		if err := os.Rename(tokens, pulled); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ParseStore(a.CertPEM, nil, []byte(tk.URI("etcd-ca")), "ca.crt", "ca.key", "ca.key.uri")
	afterSession = nil
	if err == nil {
		t.Fatal("opened a CA whose token was pulled")
	}
	t.Logf("pulled: %v", err)
	if strings.Contains(err.Error(), "no private key matching") {
		t.Errorf("a pulled token reads as a key mismatch: %v", err)
	}
	var coder input.Coder
	if errors.As(err, &coder) && coder.ExitCode() != 1 {
		t.Errorf("exit %d for a pulled token, want 1", coder.ExitCode())
	}
	if err := os.Rename(pulled, tokens); err != nil {
		t.Fatal(err)
	}

	// A CA whose key is a file, opened with this token's URI: the token
	// answers and holds no key for its certificate, the real mismatch.
	fileCA := tokenSpec(t, tk, "etcd-ca", p256)
	fileCA.Token = nil
	other, err := Create(fileCA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseStore(other.CertPEM, nil, []byte(tk.URI("etcd-ca")), "ca.crt", "ca.key", "ca.key.uri")
	if err == nil || !strings.Contains(err.Error(), "no private key matching") {
		t.Errorf("a token without the CA's key: %v", err)
	}
}
