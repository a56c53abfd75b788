package rotate

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
}

// probeTLS is the client TLS configuration for the run's probes: the CA
// in the PKI directory as the only root, and a probe certificate minted
// from it (again when the CA changed, as a recovery from an expired CA
// does).
func (c *Cluster) probeTLS() (*tls.Config, error) {
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
		c.probe.ca, c.probe.pair = authority.Cert, pair
	}
	pair := c.probe.pair
	return probe.ClientConfig(probe.CertPool(roots), &pair), nil
}

// expiredServed collects the expired server certificates the run's probes
// accepted, so that each is reported once, as a warning.
type expiredServed struct {
	mu   sync.Mutex
	seen map[string]bool // addr + serial
	log  *Logger
}

func (e *expiredServed) note(addr string, leaf *x509.Certificate) {
	key := addr + "/" + certx.Serial(leaf)
	e.mu.Lock()
	first := !e.seen[key]
	e.seen[key] = true
	e.mu.Unlock()
	if first {
		e.log.Printf("warning: %s serves certificate %q (serial %s) that expired at %s: accepted for this run's probes because it chains to the etcd CA; the cluster serves on connections opened before then, and every new handshake to it fails until it is renewed",
			addr, leaf.Subject.CommonName, pki.ShortSerial(certx.Serial(leaf)), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

func (e *expiredServed) any() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen) > 0
}

// expiredCerts lists the plan's certificates that have already expired.
func expiredCerts(infos []pki.CertInfo) []pki.CertInfo {
	var out []pki.CertInfo
	for _, in := range infos {
		if in.Status == pki.StatusExpired {
			out = append(out, in)
		}
	}
	return out
}

// describeExpired names expired certificates for one line: their names
// and the earliest expiry.
func describeExpired(infos []pki.CertInfo) string {
	var names []string
	var first time.Time
	for _, in := range infos {
		names = append(names, in.Name)
		if first.IsZero() || in.Expires.Before(first) {
			first = in.Expires
		}
	}
	return fmt.Sprintf("%s (the first at %s)", strings.Join(names, ", "), first.UTC().Format(time.RFC3339))
}

// RecoverNeededError is rotate refusing a cluster that only --recover can
// bring back: its certificates (or its CA) expired and no quorum answers,
// so no rolling procedure applies.
type RecoverNeededError struct {
	// Expired names the expired certificates.
	Expired string
	// CAExpired is true when the CA itself expired.
	CAExpired bool
	// Why is what the probe found ("no quorum: ..."), "" when the CA
	// expired and no probe was possible.
	Why string
	// Command is the exact command to run.
	Command string
}

// Error is one line (the CLI prints one), the command to run first.
func (e *RecoverNeededError) Error() string {
	head := "the cluster is down with expired certificates"
	what := "expired: " + e.Expired
	if e.CAExpired {
		head = "the cluster's CA expired"
		what = "no member accepts a new TLS handshake and nothing the CA signed can be renewed; expired: " + e.Expired
	}
	why := ""
	if e.Why != "" {
		why = "; " + e.Why
	}
	return fmt.Sprintf("%s; run: %s (it renews every expired or invalid certificate, with a new CA if the CA expired, deploys to every node and restarts every member at once, "+
		"since members restarted after expiry cannot reach one another and no rolling order exists; data directories and membership are untouched); %s%s",
		head, e.Command, what, why)
}

// ExitCode is 1: the cluster is in a state this command does not fix.
func (e *RecoverNeededError) ExitCode() int { return 1 }

// recoverNeeded returns a RecoverNeededError when the cluster h shows no
// quorum and some certificate in the plan expired; nil otherwise.
func (r *leafRun) recoverNeeded(p *Plan, h *probe.Cluster) error {
	exp := expiredCerts(p.Certs)
	if len(exp) == 0 || h.Quorum {
		return nil
	}
	var why []string
	for i, e := range h.Endpoints {
		name := e.Endpoint
		if i < len(r.o.Spec.Nodes) {
			name = r.o.Spec.Nodes[i].Name
		}
		if err := e.Err(); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", name, err))
		}
	}
	return &RecoverNeededError{Expired: describeExpired(exp), Why: "no quorum answers: " + strings.Join(why, "; "), Command: r.o.RecoverCommand}
}

// caExpired returns a RecoverNeededError when the plan's CA expired.
func (r *leafRun) caExpired(p *Plan) error {
	for _, in := range p.Certs {
		if in.Target == nil && in.Status == pki.StatusExpired {
			return &RecoverNeededError{CAExpired: true, Expired: describeExpired(expiredCerts(p.Certs)), Command: r.o.RecoverCommand}
		}
	}
	return nil
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
