package adopt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
)

// Port is one port of a member as seen on the wire.
type Port struct {
	Node string
	// Kind is ca.KindServer.Name for the client port, ca.KindPeer.Name
	// for the peer port.
	Kind string
	Addr string
	Cert *x509.Certificate
	// Err is why no certificate was seen.
	Err error
	// Problems are the ways the served certificate differs from what
	// the spec needs; empty when it matches.
	Problems []string
}

// Name is how the report names the port: "etcd-1 client port 127.0.0.1:2379".
func (p Port) Name() string {
	what := "client port"
	if p.Kind == ca.KindPeer.Name {
		what = "peer port"
	}
	return fmt.Sprintf("%s %s %s", p.Node, what, p.Addr)
}

// observe handshakes every node's client and peer port presenting pair
// (a probe client certificate from the CA, as a peer or client would)
// and checks each certificate served against the spec. The handshake
// does not verify the server: it is how a certificate that fails the
// checks (a missing SAN, another CA) is seen at all, to be reported;
// each check is then made here, by name.
func observe(ctx context.Context, s *cluster.Spec, authority *ca.CA, pair tls.Certificate, timeout time.Duration, now time.Time) []Port {
	var ports []Port
	for _, n := range s.Nodes {
		for _, k := range []struct {
			kind string
			urls []string
		}{{ca.KindServer.Name, n.ClientURLs}, {ca.KindPeer.Name, n.PeerURLs}} {
			if len(k.urls) == 0 {
				continue
			}
			p := Port{Node: n.Name, Kind: k.kind, Addr: hostPort(k.urls[0])}
			p.Cert, p.Err = served(ctx, p.Addr, pair, timeout)
			if p.Err == nil {
				p.Problems = check(p.Cert, n, authority, now)
			}
			ports = append(ports, p)
		}
	}
	return ports
}

// served is the certificate a port presents to a client holding pair.
func served(ctx context.Context, addr string, pair tls.Certificate, timeout time.Duration) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Verification is check's job, by name, after the handshake.
	cfg := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	c, _, err := probe.Dial(ctx, addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Leaf, nil
}

// check lists how a served certificate differs from what the node needs:
// issued by the CA, unexpired, with every IP and DNS name of the spec's
// node among its SANs, and fit for both serverAuth and clientAuth (etcd
// uses one certificate for both sides of a connection; one without
// clientAuth fails with "incompatible key usage", etcd#9785).
func check(c *x509.Certificate, n cluster.Node, authority *ca.CA, now time.Time) []string {
	var problems []string
	if err := authority.Verify(c, x509.ExtKeyUsageAny, validAt(c, authority)); err != nil {
		problems = append(problems, fmt.Sprintf("not from this CA (issuer %q): %v", c.Issuer.CommonName, err))
	}
	if now.After(c.NotAfter) {
		problems = append(problems, "expired on "+c.NotAfter.UTC().Format(time.RFC3339))
	}
	have := certx.SANs(c)
	var want []string
	for _, ip := range n.IPs {
		want = append(want, ip.String())
	}
	want = append(want, n.DNSNames...)
	for _, h := range want {
		if !slices.Contains(have, h) {
			problems = append(problems, fmt.Sprintf("lacks SAN %s, which the spec's node %s needs (has %s)", h, n.Name, strings.Join(have, ", ")))
		}
	}
	if !hasEKU(c, x509.ExtKeyUsageServerAuth) {
		problems = append(problems, "has no serverAuth extended key usage")
	}
	if !hasEKU(c, x509.ExtKeyUsageClientAuth) {
		problems = append(problems, `has no clientAuth extended key usage: etcd uses it as a client certificate too and fails with "incompatible key usage" (etcd#9785)`)
	}
	return problems
}

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return len(c.ExtKeyUsage) == 0 || slices.Contains(c.ExtKeyUsage, u) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// validAt is a moment both c and the CA are valid, so that a chain check
// reports the chain, not the expiry (reported on its own).
func validAt(c *x509.Certificate, authority *ca.CA) time.Time {
	at := c.NotBefore
	if authority.Cert.NotBefore.After(at) {
		at = authority.Cert.NotBefore
	}
	return at.Add(time.Second)
}

// hostPort is a URL's host:port.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return net.JoinHostPort(u.Host, "2379")
	}
	return u.Host
}

// strangers are the members the cluster lists that the spec does not
// name, from the first client port that answers with a member list.
func strangers(ctx context.Context, s *cluster.Spec, authority *ca.CA, pair tls.Certificate, timeout time.Duration) (names []string, err error) {
	var eps []string
	for _, n := range s.Nodes {
		eps = append(eps, n.ClientURLs...)
	}
	cfg := probe.ClientConfig(probe.CertPool([]*x509.Certificate{authority.Cert}), &pair)
	h := probe.Health(ctx, eps, cfg, timeout)
	for _, r := range h.Endpoints {
		if r.Members == nil {
			continue
		}
		for _, m := range r.Members {
			if _, ok := s.Node(m.Name); !ok || m.Name == "" {
				names = append(names, fmt.Sprintf("%s (%s)", m.Name, strings.Join(m.PeerURLs, ",")))
			}
		}
		return names, nil
	}
	return nil, fmt.Errorf("no client port answered with a member list")
}
