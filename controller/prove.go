package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Served is one certificate a member's port served over a fresh
// handshake.
type Served struct {
	// ID is the target it is (NODE/etcd-server on the client port,
	// NODE/etcd-peer on the peer port).
	ID       string
	Owner    string
	Serial   string
	NotAfter time.Time
}

// MemberProof is what one member's client and peer ports served, or why
// they could not be read.
type MemberProof struct {
	Node   string
	Served []Served
	// Err is the first port that did not answer with a certificate from
	// the CA, naming the port.
	Err error
}

// ProveMembers dials every member's client and peer port at once, each
// with a fresh handshake (probe.Dial never resumes a session, so the
// member loads the files it serves now) presenting cfg's probe
// certificate, and reads the serials served: the controller's proof, from
// where it runs, of what is in effect, as rotate's.
func ProveMembers(ctx context.Context, inv *pki.Inventory, cfg *tls.Config) []MemberProof {
	out := make([]MemberProof, len(inv.Spec.Nodes))
	var wg sync.WaitGroup
	for i, n := range inv.Spec.Nodes {
		out[i].Node = n.Name
		wg.Go(func() {
			ports := []struct {
				what, kind string
				addr       func() (string, error)
			}{
				{"client port", ca.KindServer.Name, func() (string, error) { return runner.ClientAddr(n) }},
				{"peer port", ca.KindPeer.Name, func() (string, error) { return runner.PeerAddr(n) }},
			}
			for _, p := range ports {
				addr, err := p.addr()
				if err == nil {
					var leaf *x509.Certificate
					dctx, cancel := context.WithTimeout(ctx, runner.ProbeTimeout)
					leaf, err = probe.ServingCert(dctx, addr, cfg)
					cancel()
					if err == nil {
						out[i].Served = append(out[i].Served, Served{ID: n.Name + "/" + p.kind, Owner: n.Name, Serial: fmt.Sprintf("%x", leaf.SerialNumber), NotAfter: leaf.NotAfter})
						continue
					}
				}
				if out[i].Err == nil {
					out[i].Err = fmt.Errorf("%s %s: %w", p.what, addr, err)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// probeCerts mints the controller's etcd client certificate from the CA,
// in memory, and mints it again when the CA changes or half its life is
// gone: never written, never in an API object. Its CN is etcd's root
// user: with auth on, membership changes and leadership hand-offs are
// root's alone, and a root certificate in the memory of the process that
// holds the CA key gives it nothing it could not mint.
type probeCerts struct {
	mu   sync.Mutex
	ca   *x509.Certificate
	pair tls.Certificate
}

// config is the client TLS configuration the prober dials with: a as the
// only root, and its probe certificate.
func (p *probeCerts) config(a *ca.CA, now time.Time) (*tls.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ca == nil || !p.ca.Equal(a.Cert) || now.After(p.pair.Leaf.NotAfter.Add(-ca.ProbeValidity/2)) {
		pair, err := a.RootClient(ca.ProbeValidity, now)
		if err != nil {
			return nil, err
		}
		if pair.Leaf == nil {
			if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				return nil, err
			}
		}
		p.ca, p.pair = a.Cert, pair
	}
	pair := p.pair
	return probe.ClientConfig(probe.CertPool([]*x509.Certificate{a.Cert}), &pair), nil
}
