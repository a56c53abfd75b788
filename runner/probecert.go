package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// probeAuthority says which CA signs the run's probe certificate and which
// CAs verify what the members serve, for every probe of rotate and ca
// rotate (see probeTLS). Outside a CA rotation it is the CA alone. During
// one the members serve leaves of either CA, so both verify; the probe is
// signed by the old CA until the files reach reissue, which starts only
// once every member is proven to trust the new one, and from then on by
// the new CA, which finish leaves as the only one the members accept.
func probeAuthority(inv *pki.Inventory) (*ca.CA, []*x509.Certificate, error) {
	old, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return nil, nil, err
	}
	if next, err := pki.LoadNextCA(inv.Paths); err != nil || next == nil {
		return old, []*x509.Certificate{old.Cert}, nil
	}
	rot, err := pki.ReadCARotation(inv)
	if err != nil {
		return nil, nil, err
	}
	roots := []*x509.Certificate{rot.Old.Cert, rot.Next.Cert}
	if pki.CAStageIndex(rot.Stage) >= pki.CAStageIndex(pki.CAStageReissue) {
		return rot.Next, roots, nil
	}
	return rot.Old, roots, nil
}

// probeCert is the run's own client certificate, minted in memory from
// the CA by ca.ProbeClient and never written anywhere. rotate probes with
// it rather than with the apiserver's or the healthcheck's certificate
// from disk: on the morning after expiry those are expired too, and etcd
// refuses an expired client certificate at the handshake, so a probe with
// them could not tell a running cluster from a dead one.
type probeCert struct {
	mu   sync.Mutex
	ca   *x509.Certificate // the CA it was minted from
	pair tls.Certificate
	// root is the run's root client (CN root), minted beside the probe
	// from the same CA, for admin calls only (see AdminTLS).
	root tls.Certificate
}

// probeTLS is the client TLS configuration for the run's probes: the CA
// in the PKI directory as the only root, and a probe certificate minted
// from it (again when the CA changed, as a recovery from an expired CA
// does).
func (c *Cluster) probeTLS() (*tls.Config, error) {
	return c.mintedTLS(false)
}

// AdminTLS is probeTLS presenting the run's root client instead: etcd
// allows membership changes, MoveLeader and the Auth API only to the
// root role once auth is on (with auth off the CN means nothing). It is
// minted in memory like the probe, from the CA in the PKI directory or
// its token, and used for those calls only; every read and health probe
// keeps the probe certificate, which etcd knows as no user.
func (c *Cluster) AdminTLS() (*tls.Config, error) {
	return c.mintedTLS(true)
}

func (c *Cluster) mintedTLS(root bool) (*tls.Config, error) {
	authority, roots, err := probeAuthority(c.inv)
	if err != nil {
		return nil, err
	}
	c.probe.mu.Lock()
	defer c.probe.mu.Unlock()
	if c.probe.ca == nil || !c.probe.ca.Equal(authority.Cert) {
		// The real clock, not Options.Now: the members check it against
		// theirs at the handshake.
		pair, err := authority.ProbeClient(ca.ProbeValidity, time.Now())
		if err != nil {
			return nil, err
		}
		rootPair, err := authority.RootClient(ca.ProbeValidity, time.Now())
		if err != nil {
			return nil, err
		}
		c.probe.ca, c.probe.pair, c.probe.root = authority.Cert, pair, rootPair
	}
	pair := c.probe.pair
	if root {
		pair = c.probe.root
	}
	return probe.ClientConfig(probe.CertPool(roots), &pair), nil
}

// ProveUnexpired shows with fresh, strict handshakes (an expired
// certificate refused, as any client refuses it) that every member's
// client and peer ports serve an unexpired certificate from the CA: the
// end of a run that found the cluster running on expired ones. It
// returns one summary per member.
func (c *Cluster) ProveUnexpired(ctx context.Context) ([]string, error) {
	cfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(c.Spec.Nodes))
	errs := make([]error, len(c.Spec.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Spec.Nodes {
		wg.Go(func() {
			var got []string
			for _, port := range []struct{ what, url string }{{"client port", n.ClientURLs[0]}, {"peer port", n.PeerURLs[0]}} {
				_, addr, err := probe.ParseEndpoint(port.url)
				if err != nil {
					errs[i] = err
					return
				}
				dctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
				leaf, err := probe.ServingCert(dctx, addr, cfg)
				cancel()
				if err != nil {
					errs[i] = &ProofError{Member: n.Name, Port: port.what + " " + addr, Err: fmt.Errorf("no fresh handshake with an unexpired certificate: %w", err)}
					return
				}
				got = append(got, fmt.Sprintf("%s %s until %s", port.what, pki.ShortSerial(certx.Serial(leaf)), leaf.NotAfter.UTC().Format(time.RFC3339)))
			}
			lines[i] = n.Name + ": " + strings.Join(got, ", ")
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Clip(lines), nil
}
