package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// CheckPeerPort is one member's peer port, checked as another member
// would see it.
const CheckPeerPort = "peer-port"

// peerChecks handshakes every member's peer port as a peer would: the
// served certificate must chain to the PKI's CA, be unexpired and name
// the member's advertised host; and the port must accept a client
// certificate from the CA (a probe minted in memory, since a member's
// peer pair is not this host's to present). Members dial each other's
// peer URLs exactly so, so a peer port that fails here fails them too,
// though only at their next new connection. Without the CA key (verify
// run where only the bundles are) the checks are skipped, and say so.
func peerChecks(ctx context.Context, inv *pki.Inventory, timeout, renewBefore time.Duration, now time.Time) []Check {
	var out []Check
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return append(out, Check{Name: CheckPeerPort, Target: inv.Paths.CACert(), Status: Skip,
			Reason: fmt.Sprintf("not run: a probe certificate needs the PKI's CA: %v", err)})
	}
	roots := []*x509.Certificate{authority.Cert}
	if next, err := pki.LoadNextCA(inv.Paths); err == nil && next != nil {
		// During a CA rotation a peer port may serve a leaf of either CA.
		roots = append(roots, next.Cert)
	}
	pair, err := authority.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return append(out, Check{Name: CheckPeerPort, Target: inv.Paths.CACert(), Status: Fail, Reason: err.Error()})
	}
	cfg := probe.ClientConfig(probe.CertPool(roots), &pair)
	for _, n := range inv.Spec.Nodes {
		if len(n.PeerURLs) == 0 {
			continue
		}
		u, err := url.Parse(n.PeerURLs[0])
		if err != nil {
			continue
		}
		target := n.Name + " " + n.PeerURLs[0]
		dctx, cancel := context.WithTimeout(ctx, timeout)
		conn, _, err := probe.Dial(dctx, u.Host, cfg)
		cancel()
		if err != nil {
			c := Check{Name: CheckPeerPort, Target: target, Status: Fail, Reason: err.Error()}
			var pe *probe.Error
			if errors.As(err, &pe) {
				c.Kind = pe.Kind
			}
			out = append(out, c)
			continue
		}
		leaf := conn.Leaf
		conn.Close()
		c := Check{Name: CheckPeerPort, Target: target, Status: OK,
			Reason: fmt.Sprintf("serves serial %s from %q, names %s, expires %s; accepted a client certificate from the CA as a peer's",
				pki.ShortSerial(certx.Serial(leaf)), leaf.Issuer.CommonName, u.Hostname(), leaf.NotAfter.UTC().Format(time.DateOnly))}
		if left := leaf.NotAfter.Sub(now); left <= renewBefore {
			c.Status = Warn
			c.Reason = fmt.Sprintf("serial %s expires in %s (%s), within renew-before: run etcdpki rotate", pki.ShortSerial(certx.Serial(leaf)),
				pki.Residual(left), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		out = append(out, c)
	}
	return out
}
