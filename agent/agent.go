package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Sign gets the certificate for csrPEM, a request for t: the CSR API in
// `etcdpki agent`, a test CA in tests. It returns the PEM certificate, or
// an error when the request was refused or could not be made.
type Sign func(ctx context.Context, t pki.Target, csrPEM []byte) (certPEM []byte, err error)

// The steps of one renewal, as events name them.
const (
	StepKey     = "key"
	StepSign    = "sign"
	StepCheck   = "check"
	StepInstall = "install"
	StepProve   = runner.StepProve
	StepTrust   = "trust"
)

// Host is one node's or client's bundle as deployed on its host: the
// spec it belongs to, and its bundle and certificates re-rooted at the
// host directory (pki.Inventory.OnHost).
type Host struct {
	Spec    *cluster.Spec
	Bundle  pki.Bundle
	Targets []pki.Target
}

// NewHost is owner's bundle in dir, from the inventory its caller built.
func NewHost(inv *pki.Inventory, owner, dir string) (*Host, error) {
	b, ts, err := inv.OnHost(owner, dir)
	if err != nil {
		return nil, err
	}
	return &Host{Spec: inv.Spec, Bundle: b, Targets: ts}, nil
}

// Agent renews a host's certificates. Its writes to the host directory
// (pairs and the CRL) are serialised: renewals and trust updates run in
// goroutines of their own and share stores.
type Agent struct {
	*Host
	Sign Sign
	// Log receives one event per step; nil discards them.
	Log *runner.Logger
	// Now is the clock for due checks and the certificate checks; nil
	// means time.Now.
	Now func() time.Time
	// HostLock keeps the writers of the host directory apart: every
	// Agent on one directory shares it (a renewal's switch, the trust
	// watcher's CRL). nil: the Agent's own.
	HostLock *sync.Mutex

	once sync.Once
}

// init fills the defaults once: several goroutines use an Agent.
func (a *Agent) init() {
	a.once.Do(func() {
		if a.Log == nil {
			a.Log = runner.NewReportLogger(discard{}, "agent")
		}
		if a.HostLock == nil {
			a.HostLock = new(sync.Mutex)
		}
	})
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Renewal is one certificate an agent switched and proved.
type Renewal struct {
	Target    pki.Target
	OldSerial string
	NewSerial string
	NotAfter  time.Time
	// RenewedAt is when the pair switched, ProvenAt when the proof on the
	// wire completed.
	RenewedAt time.Time
	ProvenAt  time.Time
	// Proof says in words what the wire showed.
	Proof string
}

// StepError is a renewal that failed at one step. Before StepInstall
// nothing changed on the host; at StepProve the new pair is in place but
// not shown in effect.
type StepError struct {
	Step   string
	Target string
	Err    error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Target, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Due reports whether t is due, and why: its pair is missing or
// unusable, or its due time (DueAt) has come.
func (a *Agent) Due(t pki.Target) (bool, string) {
	certPEM, _, err := pki.ReadTargetPair(t)
	switch {
	case err != nil:
		return true, err.Error()
	case certPEM == nil:
		return true, "no certificate yet"
	}
	c, err := ca.ParseCert(certPEM)
	if err != nil {
		return true, fmt.Sprintf("%s: %v", t.CertPath(), err)
	}
	if at := DueAt(c, a.Spec.Leaf.RenewBefore); !a.now().Before(at) {
		return true, fmt.Sprintf("expires %s, within renew-before (%s)", c.NotAfter.UTC().Format(time.RFC3339), cluster.FormatDuration(a.Spec.Leaf.RenewBefore))
	}
	return false, ""
}

// DueAt is when c is due: notAfter minus renew-before, but never before
// pki.RenewAtFraction of its life. A signer that issued a certificate
// shorter than renew-before would otherwise have it due at once, and the
// agent would ask for another, and another, in a loop.
func DueAt(c *x509.Certificate, renewBefore time.Duration) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return later(c.NotAfter.Add(-renewBefore), c.NotBefore.Add(time.Duration(float64(life)*pki.RenewAtFraction)))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Renew renews t in the order that keeps the key on the host and the
// cluster serving: (1) a new key in memory and a request for it, (2) the
// certificate through Sign, (3) checked: chain to the bundle's ca.crt,
// subject and SANs, key match, not revoked by the bundle's crl.der,
// (4) the pair switched atomically (issue.InstallPair, the key's one
// write, 0600), (5) proven on the wire. A failure before (4) changes
// nothing; the old pair keeps serving.
func (a *Agent) Renew(ctx context.Context, t pki.Target) (*Renewal, error) {
	r := &Renewal{Target: t}
	if old, _, err := pki.ReadTargetPair(t); err == nil && old != nil {
		if c, err := ca.ParseCert(old); err == nil {
			r.OldSerial = certx.Serial(c)
		}
	}
	fail := func(step string, err error) (*Renewal, error) {
		a.step(step, t.ID).Err(err).Failed("%s: %s failed: %v", t.ID, step, err)
		return r, &StepError{Step: step, Target: t.ID, Err: err}
	}
	csrPEM, keyPEM, err := ca.NewCSR(t.Request(a.Spec.Leaf))
	if err != nil {
		return fail(StepKey, err)
	}
	start := time.Now()
	certPEM, err := a.Sign(ctx, t, csrPEM)
	if err != nil {
		return fail(StepSign, err)
	}
	a.step(StepSign, t.ID).Took(time.Since(start)).Done("%s: certificate received (%d ms)", t.ID, time.Since(start).Milliseconds())
	step, err := a.install(t, certPEM, keyPEM, r)
	if err != nil {
		return fail(step, err)
	}
	a.step(StepInstall, t.ID).Serial(r.NewSerial).Done("%s: serial %s -> %s, valid until %s", t.ID,
		pki.ShortSerial(r.OldSerial), pki.ShortSerial(r.NewSerial), r.NotAfter.UTC().Format(time.DateOnly))
	start = time.Now()
	proof, err := a.Prove(ctx)
	if err != nil {
		return fail(StepProve, err)
	}
	r.ProvenAt, r.Proof = a.now(), proof
	a.step(StepProve, t.ID).Serial(r.NewSerial).Took(time.Since(start)).Done("%s: in effect: %s (%d ms)", t.ID, proof, time.Since(start).Milliseconds())
	return r, nil
}

// install is steps (3) and (4), under the lock that keeps the host
// directory's writers apart: the CRL the check reads is the one in
// effect when the pair switches.
func (a *Agent) install(t pki.Target, certPEM, keyPEM []byte, r *Renewal) (string, error) {
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	cert, err := a.check(t, certPEM, keyPEM)
	if err != nil {
		return StepCheck, err
	}
	r.NewSerial, r.NotAfter = certx.Serial(cert), cert.NotAfter
	if err := issue.InstallPair(t, certPEM, keyPEM); err != nil {
		return StepInstall, err
	}
	r.RenewedAt = a.now()
	return "", nil
}

// check is step (3): what InstallPair checks again, and revocation.
func (a *Agent) check(t pki.Target, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cas, err := pki.BundleCAs(t.CADir)
	if err != nil {
		return nil, err
	}
	cert, err := pki.CheckIssued(t, cas, certPEM, keyPEM, a.now())
	if err != nil {
		return nil, err
	}
	revoked, err := pki.RevokedInBundle(t.CADir, certx.Serial(cert))
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, fmt.Errorf("the new certificate's serial %s is revoked by %s; refusing it", certx.Serial(cert), t.CADir)
	}
	return cert, nil
}

// InstallCRL puts crlDER into effect in the bundle (issue.InstallCRL),
// between renewals.
func (a *Agent) InstallCRL(crlDER []byte) error {
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	if old, err := pki.ReadStored(a.Bundle.CADir, pki.CRLFile); err == nil && bytes.Equal(old, crlDER) {
		return nil
	}
	if err := issue.InstallCRL(a.Bundle, crlDER); err != nil {
		a.step(StepTrust, a.Bundle.Owner).Err(err).Failed("%s: CRL not installed: %v", a.Bundle.Owner, err)
		return err
	}
	l, _ := pki.ParseCRL(crlDER)
	a.step(StepTrust, a.Bundle.Owner).Done("%s: CRL number %v installed (%d revoked), no restart needed", a.Bundle.Owner, l.Number, len(l.RevokedCertificateEntries))
	return nil
}

// InstallCABundle puts caPEM into the bundle's ca.crt
// (issue.InstallCABundle), between renewals. The members and clients
// read it at their next start: a CA rotation grants those restarts. A
// CA the host does not trust yet is taken only as rot's new CA
// (checkNewCAs).
func (a *Agent) InstallCABundle(caPEM []byte, rot *v1alpha1.CARotationStatus) (bool, error) {
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	err := checkNewCAs(a.Bundle, caPEM, rot)
	changed := false
	if err == nil {
		changed, err = issue.InstallCABundle(a.Bundle, a.Targets, caPEM)
	}
	if err != nil {
		a.step(StepTrust, a.Bundle.Owner).Err(err).Failed("%s: %s not installed: %v", a.Bundle.Owner, pki.CAFile, err)
		return false, err
	}
	if changed {
		cas, _ := pki.BundleCAs(a.Bundle.CADir)
		a.step(StepTrust, a.Bundle.Owner).Done("%s: %s installed (%d CA certificates); read at the next restart", a.Bundle.Owner, pki.CAFile, len(cas))
	}
	return changed, nil
}

func (a *Agent) step(step, target string) runner.Line {
	a.init()
	return a.Log.Step(step, target)
}

type discard struct{}

func (discard) Report(runner.Event) {}

// Pending is a certificate to renew, and why.
type Pending struct {
	Target pki.Target
	Why    string
}

// Pending lists the host's certificates to renew, in bundle order: those
// due by date (Due), and those requested says a renewal request names
// (nil: no request), with its reason.
func (a *Agent) Pending(requested func(pki.Target) (bool, string)) []Pending {
	var out []Pending
	for _, t := range a.Targets {
		if due, why := a.Due(t); due {
			out = append(out, Pending{t, why})
		} else if requested != nil {
			if ok, why := requested(t); ok {
				out = append(out, Pending{t, why})
			}
		}
	}
	return out
}

// RenewPending renews ps one after another, handing each proven renewal
// to done (the agent reports it there) before the next starts. It stops
// at the first failure: the pairs before it are in effect and reported,
// the rest keep their old pairs for the next run.
func (a *Agent) RenewPending(ctx context.Context, ps []Pending, done func(*Renewal) error) ([]*Renewal, error) {
	var out []*Renewal
	for _, p := range ps {
		a.step(StepKey, p.Target.ID).Info("%s: renewing: %s", p.Target.ID, p.Why)
		r, err := a.Renew(ctx, p.Target)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		if done != nil {
			if err := done(r); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
