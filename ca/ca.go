// Package ca creates and loads the etcd certificate authority and signs
// leaf certificates with it through cfssl. It owns the certificate
// catalogue (catalogue.go): every kind of leaf, its kubeadm file name,
// subject, usages and whether it is per node or per client, which
// package pki expands over a spec. Its bad-input errors are
// input.Errors like every other package's.
package ca

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	cferr "github.com/cloudflare/cfssl/errors"
	"github.com/cloudflare/cfssl/initca"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
)

func init() {
	// cfssl logs every request at INFO to stderr; etcdpki's own lines are
	// what an operator should read.
	cflog.Level = cflog.LevelFatal
}

// Backdate is how far notBefore is set in the past, so that a member whose
// clock runs a little behind still accepts a certificate issued just now.
const Backdate = 5 * time.Minute

// CA is a loaded certificate authority, ready to sign.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	// KeyPEM is the key file's content; nil when the key is in a token.
	KeyPEM []byte
	// Token names the key when it is in a PKCS#11 token; nil for a file.
	Token *cluster.PKCS11URI
	// key signs everything this CA issues: the parsed file key, or the
	// token's key, which never leaves the token.
	key crypto.Signer
}

// Create makes a new self-signed CA per the spec. Its validity counts from
// now (notAfter = now + validity, as kubeadm does); notBefore is back-dated
// by Backdate for clock skew.
func Create(spec cluster.CA, now time.Time) (*CA, error) {
	if err := checkKey(spec.Key); err != nil {
		return nil, err
	}
	if spec.Validity < time.Second {
		return nil, input.Errorf("CA %q: validity %s is shorter than a second", spec.CommonName, spec.Validity)
	}
	if err := cluster.CheckSubjectValue(spec.CommonName); err != nil {
		return nil, input.Errorf("CA commonName %v", err)
	}
	req := &csr.CertificateRequest{
		CN:         spec.CommonName,
		KeyRequest: &csr.KeyRequest{A: spec.Key.Algorithm, S: spec.Key.Size},
		CA:         &csr.CAConfig{Expiry: spec.Validity.String()},
	}
	if spec.Token != nil && !PKCS11Compiled {
		return nil, notCompiled(spec.Token)
	}
	if spec.Token != nil {
		// The key is made in the token (or is the one already there
		// under the label: a run killed before ca.crt was written left
		// it) and never leaves it.
		key, err := createTokenKey(spec.Token, spec.Key)
		if err != nil {
			return nil, err
		}
		csrPEM, err := csr.Generate(key, req)
		if err != nil {
			return nil, fmt.Errorf("create CA %q: request: %w", spec.CommonName, plain(err))
		}
		certPEM, err := selfSign(spec, key, csrPEM, now)
		if err != nil {
			return nil, err
		}
		cert, err := checkCACert(certPEM, "new CA")
		if err != nil {
			return nil, err
		}
		return &CA{Cert: cert, CertPEM: certPEM, Token: spec.Token, key: key}, nil
	}
	// initca.New would count validity from a notBefore rounded to the
	// minute and back-dated: do what it does, with the dates set here.
	g := &csr.Generator{Validator: func(*csr.CertificateRequest) error { return nil }}
	csrPEM, keyPEM, err := g.ProcessRequest(req)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: key and request: %w", spec.CommonName, plain(err))
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", spec.CommonName, err)
	}
	certPEM, err := selfSign(spec, key, csrPEM, now)
	if err != nil {
		return nil, err
	}
	return Parse(certPEM, keyPEM, "new CA")
}

// selfSign signs the CA's own certificate with its key.
func selfSign(spec cluster.CA, key crypto.Signer, csrPEM []byte, now time.Time) ([]byte, error) {
	policy := initca.CAPolicy()
	policy.Default.Expiry, policy.Default.ExpiryString = spec.Validity, spec.Validity.String()
	s, err := local.NewSigner(key, nil, signer.DefaultSigAlgo(key), policy)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: signer: %w", spec.CommonName, plain(err))
	}
	notBefore, notAfter := validityWindow(now, spec.Validity)
	certPEM, err := s.Sign(signer.SignRequest{Request: string(csrPEM), NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		return nil, fmt.Errorf("create CA %q: sign: %w", spec.CommonName, plain(err))
	}
	return certPEM, nil
}

// validityWindow is [now - Backdate, now + validity] in whole seconds, as
// certificates store them. notAfter is rounded down: with a validity of at
// least a second it is still after now.
func validityWindow(now time.Time, validity time.Duration) (notBefore, notAfter time.Time) {
	return now.Add(-Backdate).UTC().Truncate(time.Second), now.Add(validity).UTC().Truncate(time.Second)
}

// Parse loads a CA from PEM, checking that the certificate is a CA that
// may sign certificates and that the key belongs to it. where names the
// source in errors.
func Parse(certPEM, keyPEM []byte, where string) (*CA, error) {
	return ParseFiles(certPEM, keyPEM, where, where+": CA key")
}

// ParseFiles is Parse for a CA read from two files: each problem is
// reported against the file that has it (a corrupt key against the key
// file, not the certificate).
func ParseFiles(certPEM, keyPEM []byte, certPath, keyPath string) (*CA, error) {
	cert, err := checkCACert(certPEM, certPath)
	if err != nil {
		return nil, err
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return nil, input.Errorf("%s: %v", keyPath, err)
	}
	if !certx.KeyMatches(cert, key.Public()) {
		return nil, input.Errorf("%s: CA key does not match the CA certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, CertPEM: certPEM, KeyPEM: keyPEM, key: key}, nil
}

// checkCACert parses a CA certificate and checks that it may sign
// certificates.
func checkCACert(certPEM []byte, certPath string) (*x509.Certificate, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, input.Errorf("%s: %v", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, input.Errorf("%s: certificate %q is not a CA (basicConstraints CA:FALSE)", certPath, cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, input.Errorf("%s: CA %q may not sign certificates (no keyCertSign usage)", certPath, cert.Subject.CommonName)
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < MinRSABits {
		return nil, input.Errorf("%s: the CA key is RSA-%d, too weak: etcdpki signs with RSA keys of at least %d bits (or ECDSA P-256/P-384)", certPath, k.N.BitLen(), MinRSABits)
	}
	return cert, nil
}

// MinRSABits is the smallest RSA CA key etcdpki signs with. cfssl picks
// SHA-1 for a smaller key, which Go refuses to sign with; and NIST has
// disallowed RSA under 2048 bits for signatures since 2013.
const MinRSABits = 2048

// ParseCert parses the first certificate in PEM data.
func ParseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return c, nil
		}
	}
}

// CheckPair verifies that a PEM cert and key belong together.
func CheckPair(certPEM, keyPEM []byte) error {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return err
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return err
	}
	if !certx.KeyMatches(cert, key.Public()) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// Verify checks that cert chains to this CA for the given usage at t.
func (c *CA) Verify(cert *x509.Certificate, usage x509.ExtKeyUsage, t time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(c.Cert)
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// Request asks for one leaf certificate.
type Request struct {
	Kind         Kind
	CommonName   string
	Organization []string
	// Hosts become DNS and IP SANs.
	Hosts    []string
	Key      cluster.KeySpec
	Validity time.Duration
	// ReuseKey, when set, signs this existing PEM key instead of a new one.
	ReuseKey []byte
	// Now anchors validity; zero means time.Now.
	Now time.Time
}

// Sign issues a leaf certificate and returns the cert and key PEM. Its
// notAfter never passes the CA's own, so a leaf can't outlive its issuer.
func (c *CA) Sign(r Request) (certPEM, keyPEM []byte, err error) {
	p, err := c.prepare(r)
	if err != nil {
		return nil, nil, err
	}
	csrPEM, keyPEM, err := r.csr()
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = p.sign(csrPEM)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// prepared is a request checked against the catalogue and the CA, ready
// to sign a certificate request: Sign's own or one a requester sent
// (SignCSR). Both sign through it, with one profile and one window.
type prepared struct {
	c      *CA
	r      Request
	policy *config.Signing
	now    time.Time
}

// prepare checks r before cfssl sees any of it.
func (c *CA) prepare(r Request) (prepared, error) {
	policy, ok := kinds[r.Kind.Profile]
	if !ok {
		return prepared{}, fmt.Errorf("unknown certificate profile %q", r.Kind.Profile)
	}
	if err := r.check(); err != nil {
		return prepared{}, err
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(c.Cert.NotAfter) {
		return prepared{}, input.Errorf("CA %q expired on %s: it can sign nothing usable; a new CA must be rolled out in stages", c.Cert.Subject.CommonName, c.Cert.NotAfter.Format(time.RFC3339))
	}
	return prepared{c: c, r: r, policy: policy, now: now}, nil
}

// sign signs csrPEM with the request's profile and window, the SANs the
// request names, and checks the result chains to the CA.
func (p prepared) sign(csrPEM []byte) ([]byte, error) {
	c, r := p.c, p.r
	s, err := local.NewSigner(c.key, c.Cert, signer.DefaultSigAlgo(c.key), p.policy)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", plain(err))
	}
	notBefore, notAfter := c.window(p.now, r.Validity)
	certPEM, err := s.Sign(signer.SignRequest{
		Hosts:     r.Hosts,
		Request:   string(csrPEM),
		Profile:   r.Kind.Profile,
		NotBefore: notBefore,
		NotAfter:  notAfter,
	})
	if err != nil {
		return nil, fmt.Errorf("sign %q: %w", r.CommonName, plain(err))
	}
	// Refuse anything that fails our own chain and usage check rather
	// than hand etcd a certificate it would reject at the handshake.
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	if err := c.Verify(cert, r.Kind.Usages[0], p.now); err != nil {
		return nil, fmt.Errorf("issued %q does not verify: %w", r.CommonName, err)
	}
	return certPEM, nil
}

// check refuses a request cfssl should never see: a validity under a
// second, an untested key, or a subject or SAN that is not plain text.
func (r Request) check() error {
	if r.Validity < time.Second {
		return input.Errorf("certificate %q: validity %s is shorter than a second", r.CommonName, r.Validity)
	}
	if err := checkKey(r.Key); err != nil {
		return err
	}
	// Checked here too, not only in the spec: cfssl turns some bad hosts
	// into other SAN types and panics on non-ASCII names.
	if err := cluster.CheckSubjectValue(r.CommonName); err != nil {
		return input.Errorf("commonName %v", err)
	}
	for _, o := range r.Organization {
		if err := cluster.CheckSubjectValue(o); err != nil {
			return input.Errorf("certificate %q: organization %v", r.CommonName, err)
		}
	}
	for _, h := range r.Hosts {
		if net.ParseIP(h) == nil {
			if err := cluster.CheckDNSName(h); err != nil {
				return input.Errorf("certificate %q: SAN %v", r.CommonName, err)
			}
		}
	}
	return nil
}

// csr makes the certificate request to sign, and the key it is for: the
// key to reuse, or a new one.
func (r Request) csr() (csrPEM, keyPEM []byte, err error) {
	creq := &csr.CertificateRequest{CN: r.CommonName, Hosts: r.Hosts, KeyRequest: &csr.KeyRequest{A: r.Key.Algorithm, S: r.Key.Size}}
	for _, o := range r.Organization {
		creq.Names = append(creq.Names, csr.Name{O: o})
	}
	if r.ReuseKey != nil {
		key, err := certx.ParseKey(r.ReuseKey)
		if err != nil {
			return nil, nil, err
		}
		csrPEM, err = csr.Generate(key, creq)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate request for %q: %w", r.CommonName, plain(err))
		}
		return csrPEM, r.ReuseKey, nil
	}
	csrPEM, keyPEM, err = csr.ParseRequest(creq)
	if err != nil {
		return nil, nil, fmt.Errorf("key and request for %q: %w", r.CommonName, plain(err))
	}
	return csrPEM, keyPEM, nil
}

// window decides a leaf's validity period, clipped to the CA's own.
func (c *CA) window(now time.Time, validity time.Duration) (notBefore, notAfter time.Time) {
	// Validity counts from now, as kubeadm's does: the back-dating is for
	// clock skew and must not eat into it (a 1m validity back-dated 5m
	// would be born expired).
	notBefore, notAfter = validityWindow(now, validity)
	if notBefore.Before(c.Cert.NotBefore) {
		// A leaf valid before its CA would fail verification in that gap.
		notBefore = c.Cert.NotBefore
	}
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	return notBefore, notAfter
}

// plain turns cfssl's errors, whose text is a JSON document, into their
// message, so that what an operator reads is one line of words.
func plain(err error) error {
	var ce *cferr.Error
	if errors.As(err, &ce) {
		return errors.New(ce.Message)
	}
	return err
}

func checkKey(k cluster.KeySpec) error {
	if !k.Supported() {
		// cfssl accepts some sizes we don't want and panics on others;
		// only pass it what we have tested (cluster's one set of key
		// rules).
		return input.Errorf("key %s is not supported (%s)", k, cluster.SupportedKeysText())
	}
	return nil
}
