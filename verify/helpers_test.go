package verify

import (
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

// otherTLSService serves HTTPS (HTTP/2 included) on loopback with a
// certificate from the given CA: a TLS endpoint that is not etcd, such as
// another service's port typed by mistake.
func otherTLSService(t *testing.T, ca *testpki.CA) string {
	t.Helper()
	web := ca.Leaf(t, testpki.LeafOptions{CN: "web", Hosts: []string{"127.0.0.1"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	crt, key := testpki.WritePair(t, t.TempDir(), "web", web)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.ServeTLS(l, crt, key)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}

// find returns the first check with that name and target ("" matches any
// target).
func (r *Report) find(name, target string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name && (target == "" || c.Target == target) {
			return c, true
		}
	}
	return Check{}, false
}
