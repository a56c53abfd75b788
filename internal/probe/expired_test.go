package probe

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

// TestTolerateExpiredAcceptsOnlyOurExpiredServer: with TolerateExpired
// an expired server certificate that chains to the CA and names the host
// is accepted, and reported; one from another CA, one naming another
// host, and one whose CA expired are refused as a strict probe refuses
// them, and without the tolerance the expired one is refused too.
func TestTolerateExpiredAcceptsOnlyOurExpiredServer(t *testing.T) {
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	ours := testpki.NewCA(t, "etcd-ca")
	other := testpki.NewCA(t, "other-ca")
	past := time.Now().Add(-time.Minute)
	expired := func(ca *testpki.CA, host string) tls.Certificate {
		return ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{host}, EKU: eku, NotBefore: time.Now().Add(-time.Hour), NotAfter: past})
	}
	// An expired CA with a leaf that expired with it.
	oldPair := ours.Leaf(t, testpki.LeafOptions{CN: "old-ca", IsCA: true, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: past})
	oldCA := &testpki.CA{Cert: oldPair.Leaf, Key: oldPair.PrivateKey.(crypto.Signer)}
	client := ours.Leaf(t, testpki.LeafOptions{CN: "probe", EKU: eku})

	for _, tc := range []struct {
		name   string
		server tls.Certificate
		roots  *x509.CertPool
		kind   Kind // "" means accepted
	}{
		{"expired, our CA, our host", expired(ours, "127.0.0.1"), ours.Pool(), ""},
		{"expired, other CA", expired(other, "127.0.0.1"), ours.Pool(), KindUnknownCA},
		{"expired, other host", expired(ours, "127.0.0.9"), ours.Pool(), KindSANMismatch},
		{"valid, our CA", ours.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku}), ours.Pool(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tlsServer(t, tc.server, ours, 0)
			var seen []string
			tolerant := TolerateExpired(func(a string, leaf *x509.Certificate) { seen = append(seen, a+" "+leaf.Subject.CommonName) })
			cfg := &tls.Config{RootCAs: tc.roots, Certificates: []tls.Certificate{client}}
			_, err := ServingCert(context.Background(), addr, cfg, tolerant)
			var pe *Error
			switch {
			case tc.kind == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.kind != "" && (!errors.As(err, &pe) || pe.Kind != tc.kind):
				t.Fatalf("got %v, want a %s refusal", err, tc.kind)
			}
			isExpired := time.Now().After(tc.server.Leaf.NotAfter)
			if wantSeen := tc.kind == "" && isExpired; (len(seen) > 0) != wantSeen {
				t.Errorf("reported %v; want a report: %v", seen, wantSeen)
			}
			if tc.kind == "" && isExpired {
				// Strict again: the same server is refused for expiry.
				_, err := ServingCert(context.Background(), addr, cfg)
				if !errors.As(err, &pe) || pe.Kind != KindServerCertExpired {
					t.Errorf("strict probe got %v, want %s", err, KindServerCertExpired)
				}
			}
		})
	}
	t.Run("expired CA", func(t *testing.T) {
		srv := oldCA.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku, NotBefore: time.Now().Add(-time.Hour), NotAfter: past})
		addr := tlsServer(t, srv, ours, 0)
		_, err := ServingCert(context.Background(), addr, &tls.Config{RootCAs: oldCA.Pool(), Certificates: []tls.Certificate{client}}, TolerateExpired(nil))
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != KindServerCertExpired {
			t.Fatalf("got %v; want the server certificate whose CA expired refused as expired", err)
		}
	})
}
