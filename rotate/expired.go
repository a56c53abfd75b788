package rotate

import (
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// expiredServed collects the expired server certificates the run's probes
// accepted, so that each is reported once, as a warning.
type expiredServed struct {
	mu   sync.Mutex
	seen map[string]bool // addr + serial
	log  *runner.Logger
}

func (e *expiredServed) note(addr string, leaf *x509.Certificate) {
	key := addr + "/" + certx.Serial(leaf)
	e.mu.Lock()
	first := !e.seen[key]
	e.seen[key] = true
	e.mu.Unlock()
	if first {
		e.log.Step(stepExpired, addr).Serial(certx.Serial(leaf)).Warn("warning: %s serves certificate %q (serial %s) that expired at %s: accepted for this run's probes because it chains to the etcd CA; the cluster serves on connections opened before then, and every new handshake to it fails until it is renewed",
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
		if i < len(r.Inv.Spec.Nodes) {
			name = r.Inv.Spec.Nodes[i].Name
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
