package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
)

// serverRequest is what a spec asks for node-1's server certificate.
func serverRequest() Request {
	return Request{Kind: KindServer, CommonName: "node-1", Hosts: []string{"10.0.0.1", "node-1.example", "localhost", "127.0.0.1", "::1"},
		Key: p256, Validity: time.Hour}
}

// makeCSR builds a request by hand, so a test can put in it what cfssl
// never would.
func makeCSR(t *testing.T, key crypto.Signer, tmpl x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func ecKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// exact is the template of a request that asks for exactly serverRequest.
func exact() x509.CertificateRequest {
	return x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "node-1"},
		DNSNames:    []string{"node-1.example", "localhost"},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
}

func TestSignCSRIssuesWhatTheSpecSays(t *testing.T) {
	a := newCA(t, 24*time.Hour)
	r := serverRequest()
	csrPEM, keyPEM, err := NewCSR(r)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := a.SignCSR(r, csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPair(certPEM, keyPEM); err != nil {
		t.Fatalf("the certificate is not for the request's key: %v", err)
	}
	c, _ := ParseCert(certPEM)
	for _, u := range KindServer.Usages {
		if err := a.Verify(c, u, time.Now()); err != nil {
			t.Errorf("usage %v: %v", u, err)
		}
	}
	got, want := certx.SANs(c), []string{"10.0.0.1", "127.0.0.1", "::1", "node-1.example", "localhost"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || c.Subject.CommonName != "node-1" {
		t.Errorf("issued CN %q SANs %v, want node-1 %v", c.Subject.CommonName, got, want)
	}
	if d := c.NotAfter.Sub(time.Now()); d > time.Hour || d < 58*time.Minute {
		t.Errorf("notAfter in %s, want the request's hour", d)
	}
}

func TestSignCSRNeverOutlivesCA(t *testing.T) {
	a := newCA(t, time.Hour)
	r := serverRequest()
	r.Validity = 48 * time.Hour
	csrPEM, _, err := NewCSR(r)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := a.SignCSR(r, csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseCert(certPEM)
	if c.NotAfter.After(a.Cert.NotAfter) {
		t.Errorf("leaf notAfter %s after the CA's %s", c.NotAfter, a.Cert.NotAfter)
	}
}

func TestCheckCSRAcceptsDNSNamesInAnyCase(t *testing.T) {
	tmpl := exact()
	tmpl.DNSNames = []string{"NODE-1.example", "LocalHost"}
	if err := CheckCSR(serverRequest(), makeCSR(t, ecKey(t), tmpl)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCSRNamesTheMismatch(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	withOrg := serverRequest()
	withOrg.Organization = []string{"etcd"}
	tamper := func(p []byte) []byte {
		b, _ := pem.Decode(p)
		b.Bytes[len(b.Bytes)-3] ^= 0xff
		return pem.EncodeToMemory(b)
	}
	change := func(f func(*x509.CertificateRequest)) x509.CertificateRequest {
		tmpl := exact()
		f(&tmpl)
		return tmpl
	}
	cases := []struct {
		name string
		r    Request
		csr  []byte
		want CSRMismatch
		text string
	}{
		{"common name", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.Subject.CommonName = "node-2" })),
			CSRMismatch{"commonName", "node-2", "node-1"}, "commonName node-2, the spec says node-1"},
		{"extra organization", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.Subject.Organization = []string{"system:masters"} })),
			CSRMismatch{"organization", "system:masters", ""}, "organization system:masters is not in the spec"},
		{"missing organization", withOrg, makeCSR(t, ecKey(t), exact()),
			CSRMismatch{"organization", "", "etcd"}, "organization etcd is missing (the spec gives it)"},
		{"other subject attribute", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.Subject.OrganizationalUnit = []string{"ops"} })),
			CSRMismatch{"subject", "2.5.4.11=ops", ""}, "subject 2.5.4.11=ops is not in the spec"},
		{"extra IP", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.IPAddresses = append(c.IPAddresses, net.ParseIP("10.0.0.2")) })),
			CSRMismatch{"SAN", "10.0.0.2", ""}, "SAN 10.0.0.2 is not in the spec"},
		{"missing DNS", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.DNSNames = c.DNSNames[1:] })),
			CSRMismatch{"SAN", "", "node-1.example"}, "SAN node-1.example is missing (the spec gives it)"},
		{"email SAN", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.EmailAddresses = []string{"a@example.com"} })),
			CSRMismatch{"SAN", "email:a@example.com", ""}, "SAN email:a@example.com is not in the spec"},
		{"URI SAN", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "x"}} })),
			CSRMismatch{"SAN", "URI:spiffe://x", ""}, "SAN URI:spiffe://x is not in the spec"},
		{"asks to be a CA", serverRequest(), makeCSR(t, ecKey(t), change(func(c *x509.CertificateRequest) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}}
		})), CSRMismatch{"extension", "2.5.29.19", ""}, "extension 2.5.29.19 is not in the spec"},
		{"key", serverRequest(), makeCSR(t, rsaKey, exact()),
			CSRMismatch{"key", "rsa-2048", "ecdsa-256"}, "key rsa-2048, the spec says ecdsa-256"},
		{"signature", serverRequest(), tamper(makeCSR(t, ecKey(t), exact())),
			CSRMismatch{"signature", "", ""}, ""},
		{"not a request", serverRequest(), []byte("hello"),
			CSRMismatch{"request", "is not one PEM certificate request", ""}, "request is not one PEM certificate request"},
	}
	a := newCA(t, 24*time.Hour)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCSR(tc.r, tc.csr)
			var m *CSRMismatch
			if !errors.As(err, &m) {
				t.Fatalf("CheckCSR = %v, want a *CSRMismatch", err)
			}
			if m.Field != tc.want.Field || (tc.text != "" && (*m != tc.want || m.Error() != tc.text)) {
				t.Errorf("got %#v %q, want %#v %q", *m, m.Error(), tc.want, tc.text)
			}
			if cert, err := a.SignCSR(tc.r, tc.csr); cert != nil || !errors.As(err, &m) {
				t.Errorf("SignCSR signed a mismatched request: %v", err)
			}
		})
	}
}
