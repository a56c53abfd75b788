package probe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"
)

// ExpiredSeen is told about each expired server certificate a probe
// accepted under TolerateExpired: the address dialled and the leaf.
type ExpiredSeen func(addr string, leaf *x509.Certificate)

// Option is a policy for a probe, given explicitly to Dial, Endpoint,
// Health and ServingCert: without one, a probe judges a server as any
// etcd client does.
type Option func(*options)

type options struct{ tolerate ExpiredSeen }

func optionsOf(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// TolerateExpired is the option under which Dial, Endpoint, Health and
// ServingCert accept a server certificate that has expired but is
// otherwise what they would accept: it chains to the configured roots, names the host dialled
// and is fit for serverAuth, and the CA it chains to has not expired
// itself. seen is called for every such certificate, so that a caller
// reports it: an expired certificate is never accepted silently.
//
// It is for the morning after expiry: members whose certificates expired
// keep serving on the connections they had, and a tool that refused
// their certificates could neither check the cluster's health nor put
// renewed certificates into effect. Everything else a handshake checks
// still holds.
func TolerateExpired(seen ExpiredSeen) Option {
	if seen == nil {
		seen = func(string, *x509.Certificate) {}
	}
	return func(o *options) { o.tolerate = seen }
}

// tolerate returns cfg, cloned, verifying the server's certificate itself
// for addr (host:port) when o tolerates expired certificates. A config
// that already skips verification is left alone: it was tolerant already,
// or its owner chose so.
func tolerate(o options, cfg *tls.Config, addr string) *tls.Config {
	seen := o.tolerate
	if seen == nil || cfg == nil || cfg.InsecureSkipVerify {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cfg
	}
	roots := cfg.RootCAs
	cfg = cfg.Clone()
	// crypto/tls's own check runs only without InsecureSkipVerify, and it
	// knows one clock; VerifyConnection below does the same check and
	// takes an expired leaf as valid at its own end of life. It runs for
	// every handshake, resumed ones included, and for the gRPC client's
	// too, which gets this same config.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyTolerant(cs.PeerCertificates, roots, host, addr, seen)
	}
	return cfg
}

// verifyTolerant verifies certs (leaf first) as crypto/tls would, except
// that a leaf past its notAfter is verified at its last valid second and,
// when that passes and its CA is still valid now, accepted and reported.
// Any other failure is crypto/tls's own error, so classifyHandshake says
// what it says for a strict probe.
func verifyTolerant(certs []*x509.Certificate, roots *x509.CertPool, host, addr string, seen ExpiredSeen) error {
	if len(certs) == 0 {
		return errors.New("tls: server presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: host, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := certs[0]
	_, err := leaf.Verify(opts)
	if err == nil {
		return err
	}
	now := time.Now()
	var ci x509.CertificateInvalidError
	if !errors.As(err, &ci) || ci.Reason != x509.Expired || !now.After(leaf.NotAfter) {
		return err
	}
	opts.CurrentTime = leaf.NotAfter
	chains, verr := leaf.Verify(opts)
	if verr != nil {
		// Wrong CA, wrong host, wrong usage: what a strict probe would
		// say of it once the expiry is set aside.
		return verr
	}
	for _, chain := range chains {
		// Every certificate above the leaf must be valid now: an expired
		// CA is not a certificate to renew but a CA to replace.
		valid := true
		for _, c := range chain[1:] {
			if now.After(c.NotAfter) || now.Before(c.NotBefore) {
				valid = false
			}
		}
		if valid {
			seen(addr, leaf)
			return nil
		}
	}
	return err
}
