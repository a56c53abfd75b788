package ca

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
)

// ProbeCommonName is the subject of the client certificates etcdpki mints
// for its own probes, so that an etcd audit or log line tells them apart
// from the apiserver's and the healthcheck's.
const ProbeCommonName = "etcdpki-probe"

// ProbeValidity is how long a probe certificate lives. A TLS handshake is
// the only moment its validity matters, so it needs to outlast only one
// command's handshakes: an hour covers a rolling restart of a five-member
// cluster with slow members, and leaves little worth stealing from memory.
const ProbeValidity = time.Hour

// probeKey is the probe's key: ECDSA P-256 signs fastest, and every etcd
// since 3.0 accepts it whatever the CA's own algorithm is.
var probeKey = cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}

// ProbeClient issues a short-lived client certificate from this CA for a
// command's own probes. It is held in memory and never written to disk or
// into a bundle, so a probe never depends on a client certificate on disk
// still being valid (an expired healthcheck or apiserver certificate is
// refused at the handshake), and a probe signed by a given CA shows
// whether a member trusts that CA (the CA rotation's proof).
func (c *CA) ProbeClient(validity time.Duration, now time.Time) (tls.Certificate, error) {
	return c.inMemoryClient(ProbeCommonName, "probe", validity, now)
}

// RootClient issues a short-lived client certificate whose CN is etcd's
// root user (cluster.RootUser: with auth on etcd takes the CN as the
// user), for a command's admin calls with auth on (membership
// changes, MoveLeader, the Auth API). Like a probe certificate it is
// held in memory only and signed through the CA's one crypto.Signer
// (file key or token), so no root key ever lands on disk; only
// `etcdpki issue root` writes one, on request, into the PKI directory.
func (c *CA) RootClient(validity time.Duration, now time.Time) (tls.Certificate, error) {
	return c.inMemoryClient(cluster.RootUser, "root", validity, now)
}

// inMemoryClient signs a client certificate with a fresh P-256 key that
// only the returned pair holds.
func (c *CA) inMemoryClient(cn, what string, validity time.Duration, now time.Time) (tls.Certificate, error) {
	certPEM, keyPEM, err := c.Sign(Request{Kind: KindClient, CommonName: cn, Key: probeKey, Validity: validity, Now: now})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s client certificate from CA %q: %w", what, c.Cert.Subject.CommonName, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s client certificate from CA %q: %w", what, c.Cert.Subject.CommonName, err)
	}
	return pair, nil
}
