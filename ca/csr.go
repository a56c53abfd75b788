package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/etcdpki/etcdpki/internal/certx"
)

// NewCSR makes a new key in memory and a certificate request for it that
// asks for exactly what r says: its subject, its SANs, a key of its
// algorithm and size. The key is returned to be written once, by whoever
// holds it (the agent, into its own host's bundle); only the request
// travels. r.ReuseKey, when set, is signed instead of a new key.
func NewCSR(r Request) (csrPEM, keyPEM []byte, err error) {
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	return r.csr()
}

// SignCSR signs a certificate request someone else made, after CheckCSR
// has found it to be exactly what r asks for. It signs with r's profile
// and window, clipped to the CA, and checks the result chains, as Sign
// does: the only difference is who made the key.
func (c *CA) SignCSR(r Request, csrPEM []byte) (certPEM []byte, err error) {
	p, err := c.prepare(r)
	if err != nil {
		return nil, err
	}
	if err := CheckCSR(r, csrPEM); err != nil {
		return nil, err
	}
	return p.sign(csrPEM)
}

// CSRMismatch says how a certificate request differs from what it should
// ask for: Field is what differs ("commonName", "organization",
// "subject", "SAN", "key", "extension", "signature", "request"), Got is
// what the request has ("" when it lacks Want), Want is what it should
// have ("" when Got should not be there at all).
type CSRMismatch struct {
	Field, Got, Want string
}

func (m *CSRMismatch) Error() string {
	switch {
	case m.Field == "signature" || m.Field == "request":
		return m.Field + " " + m.Got
	case m.Want == "":
		return fmt.Sprintf("%s %s is not in the spec", m.Field, m.Got)
	case m.Got == "":
		return fmt.Sprintf("%s %s is missing (the spec gives it)", m.Field, m.Want)
	}
	return fmt.Sprintf("%s %s, the spec says %s", m.Field, m.Got, m.Want)
}

// oidSAN is the subjectAltName extension, the only one a request may
// carry: cfssl copies a request's basicConstraints into the certificate,
// so a request that asked to be a CA must never reach it.
var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// CheckCSR checks that a PEM certificate request is exactly what r asks
// for: a valid self-signature, the subject's common name and
// organizations and nothing else, the DNS and IP SANs as sets (none
// missing, none extra, no e-mail or URI SANs), no extension but the SANs,
// and a key of r's algorithm and size. The first difference is returned
// as a *CSRMismatch.
func CheckCSR(r Request, csrPEM []byte) error {
	b, rest := pem.Decode(csrPEM)
	if b == nil || (b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST") || len(strings.TrimSpace(string(rest))) != 0 {
		return &CSRMismatch{Field: "request", Got: "is not one PEM certificate request"}
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return &CSRMismatch{Field: "request", Got: "does not parse: " + err.Error()}
	}
	if err := req.CheckSignature(); err != nil {
		return &CSRMismatch{Field: "signature", Got: "does not verify: " + err.Error()}
	}
	if err := checkSubject(r, req.Subject); err != nil {
		return err
	}
	if err := checkSANs(r.Hosts, req); err != nil {
		return err
	}
	for _, e := range req.Extensions {
		if !e.Id.Equal(oidSAN) {
			return &CSRMismatch{Field: "extension", Got: e.Id.String()}
		}
	}
	if got, want := certx.KeyDescription(req.PublicKey), r.Key.String(); got != want {
		return &CSRMismatch{Field: "key", Got: got, Want: want}
	}
	return nil
}

// checkSubject wants the common name, the organizations as a set, and no
// other attribute.
func checkSubject(r Request, s pkix.Name) error {
	if s.CommonName != r.CommonName {
		return &CSRMismatch{Field: "commonName", Got: quoteEmpty(s.CommonName), Want: r.CommonName}
	}
	if err := compareSets("organization", s.Organization, r.Organization, func(v string) string { return v }); err != nil {
		return err
	}
	for _, n := range s.Names {
		if !n.Type.Equal(oidCommonName) && !n.Type.Equal(oidOrganization) {
			return &CSRMismatch{Field: "subject", Got: fmt.Sprintf("%s=%v", n.Type, n.Value)}
		}
	}
	return nil
}

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// checkSANs compares the request's DNS and IP SANs with hosts, as sets,
// and refuses e-mail and URI SANs, which no etcd certificate has.
func checkSANs(hosts []string, req *x509.CertificateRequest) error {
	if len(req.EmailAddresses) > 0 {
		return &CSRMismatch{Field: "SAN", Got: "email:" + req.EmailAddresses[0]}
	}
	if len(req.URIs) > 0 {
		return &CSRMismatch{Field: "SAN", Got: "URI:" + req.URIs[0].String()}
	}
	var wantIPs, wantDNS, gotIPs []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			wantIPs = append(wantIPs, ip.String())
		} else {
			wantDNS = append(wantDNS, h)
		}
	}
	for _, ip := range req.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if err := compareSets("SAN", gotIPs, wantIPs, func(v string) string { return v }); err != nil {
		return err
	}
	// DNS names compare without case, as resolvers and TLS do.
	return compareSets("SAN", req.DNSNames, wantDNS, strings.ToLower)
}

// compareSets reports the first value of got not in want (extra), then
// the first of want not in got (missing); norm says when two are equal.
func compareSets(field string, got, want []string, norm func(string) string) error {
	has := func(set []string, v string) bool {
		return slices.ContainsFunc(set, func(s string) bool { return norm(s) == norm(v) })
	}
	for _, g := range got {
		if !has(want, g) {
			return &CSRMismatch{Field: field, Got: g}
		}
	}
	for _, w := range want {
		if !has(got, w) {
			return &CSRMismatch{Field: field, Want: w}
		}
	}
	return nil
}

// quoteEmpty shows an empty value as "" so a message never has a hole.
func quoteEmpty(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
