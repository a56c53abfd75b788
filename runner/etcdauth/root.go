package etcdauth

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
)

// RootClientTLS is a client TLS configuration that acts as etcd's root
// user: with auth on only root reads the cluster's users and roles
// (Live) and changes them (Apply). Its certificate, CN root, is minted
// in memory from authority (the PKI directory's CA, its key a file or a
// token object) for ca.ProbeValidity and never written anywhere, so a
// command that holds the CA needs no break-glass root certificate on
// disk. roots verify the members' serving certificates; nil means
// authority's certificate alone.
func RootClientTLS(authority *ca.CA, roots *x509.CertPool, now time.Time) (*tls.Config, error) {
	pair, err := authority.RootClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	if roots == nil {
		roots = probe.CertPool([]*x509.Certificate{authority.Cert})
	}
	return probe.ClientConfig(roots, &pair), nil
}
