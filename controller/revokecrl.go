package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// ParseSerial is pki.ParseSerial.
func ParseSerial(s string) (*big.Int, string, bool) { return pki.ParseSerial(s) }

// RevocationExpired reports whether e's certificate expired a CRL
// validity ago (pki.CRLKeeps): its serial leaves the CRL at the next
// signing. One whose notAfter is not known never expires, nor one whose
// notAfter is not after its request: the notAfter comes from the status,
// which the agents write, and a forged past one would make the
// revocation a no-op.
func RevocationExpired(e v1alpha1.RevocationSpec, validity time.Duration, now time.Time) bool {
	if e.NotAfter == nil || e.RequestedAt != nil && !e.NotAfter.After(e.RequestedAt.Time) {
		return false
	}
	return !pki.CRLKeeps(pki.Revoked{NotAfter: e.NotAfter.Time}, validity, now)
}

// CRLEntries are the entries the next CRL must list: what the published
// CRL lists, less the serials of expired spec revocations, and every
// serial of revoke (spec revocations ready for the CRL) it lacks.
// changed says they differ from the published CRL's, so that a CRL is
// signed only when its content moves: the CRL number goes up once per
// change, not once per reconcile.
func CRLEntries(published *x509.RevocationList, revoke, expired []v1alpha1.RevocationSpec, now time.Time) (entries []ca.Revocation, changed bool) {
	gone := map[string]bool{}
	for _, e := range expired {
		if _, s, ok := ParseSerial(e.Serial); ok {
			gone[s] = true
		}
	}
	have := map[string]bool{}
	for _, e := range published.RevokedCertificateEntries {
		s := fmt.Sprintf("%x", e.SerialNumber)
		if gone[s] {
			changed = true
			continue
		}
		have[s] = true
		entries = append(entries, ca.Revocation{Serial: e.SerialNumber, Reason: e.ReasonCode, When: e.RevocationTime})
	}
	for _, e := range revoke {
		n, s, ok := ParseSerial(e.Serial)
		if !ok || have[s] {
			continue
		}
		have[s] = true
		when := now
		if e.RequestedAt != nil {
			when = e.RequestedAt.Time
		}
		entries = append(entries, ca.Revocation{Serial: n, Reason: pki.Reasons[reasonOrDefault(e.Reason)], When: when})
		changed = true
	}
	return entries, changed
}

func reasonOrDefault(r string) string {
	if r == "" {
		return "unspecified"
	}
	return r
}

// Refusal is one port's verdict on a revoked serial: the probe minted
// with it must be refused, its twin (the same certificate with another
// serial, presented at the same moment) accepted, so that the refusal is
// the CRL's and not a port that refuses everyone.
type Refusal struct {
	Member, Port     string
	Revoked, Control probe.Verdict
	Err              error
}

// problem is why the verdict is not a proof of refusal, "" if it is one.
func (v Refusal) problem() string {
	switch {
	case v.Err != nil:
		return v.Err.Error()
	case !v.Control.Accepted:
		return "refused a fresh probe too (" + v.Control.How + ")"
	case v.Revoked.Accepted:
		return "accepted the serial (" + v.Revoked.How + "): the CRL its agent installs does not list it yet, or the member reads no CRL " +
			"(etcd reads one only from --client-crl-file/--peer-crl-file or their ETCD_ variables, as etcd.env sets them, never from --config-file)"
	}
	return ""
}

// ProveRefused presents, on every member's client and peer port at once,
// a probe certificate minted in memory with serial (never written
// anywhere; etcd compares serials only) and its twin. It returns every
// port's verdict and, when some port is not yet a proof, why, naming it.
func ProveRefused(ctx context.Context, nodes []string, addrs func(node string) (client, peer string, err error), a *ca.CA, serial *big.Int, now time.Time) ([]Refusal, string) {
	revoked, err := a.ProbeWithSerial(serial, now)
	if err != nil {
		return nil, err.Error()
	}
	control, err := a.Twin(revoked.Leaf)
	if err != nil {
		return nil, err.Error()
	}
	roots := probe.CertPool([]*x509.Certificate{a.Cert})
	var ports []Refusal
	for _, n := range nodes {
		c, p, err := addrs(n)
		if err != nil {
			return nil, fmt.Sprintf("%s: %v", n, err)
		}
		ports = append(ports, Refusal{Member: n, Port: "client " + c}, Refusal{Member: n, Port: "peer " + p})
	}
	var wg sync.WaitGroup
	for i := range ports {
		wg.Go(func() { ports[i] = present(ctx, ports[i], roots, revoked, control) })
	}
	wg.Wait()
	var bad []string
	for _, v := range ports {
		if p := v.problem(); p != "" {
			bad = append(bad, fmt.Sprintf("%s %s: %s", v.Member, v.Port, p))
		}
	}
	return ports, strings.Join(bad, "; ")
}

func present(ctx context.Context, v Refusal, roots *x509.CertPool, revoked, control tls.Certificate) Refusal {
	_, addr, _ := strings.Cut(v.Port, " ")
	var cerr error
	var wg sync.WaitGroup
	wg.Go(func() { v.Control, cerr = probe.Present(ctx, addr, roots, control, runner.ProbeTimeout) })
	var err error
	v.Revoked, err = probe.Present(ctx, addr, roots, revoked, runner.ProbeTimeout)
	wg.Wait()
	if err != nil || cerr != nil {
		v.Err = fmt.Errorf("%w", firstErr(err, cerr))
	}
	return v
}

func firstErr(errs ...error) error {
	i := slices.IndexFunc(errs, func(e error) bool { return e != nil })
	return errs[i]
}
