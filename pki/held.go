package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// StatusHeld is a certificate in use on its host whose key etcdpki never
// had: adopt saw it on the wire and recorded it. It is due like any other
// certificate, and its first renewal issues a pair etcdpki manages.
const StatusHeld = "held"

// HeldDir holds the certificates adopt recorded without a key, one file
// per certificate ID. It lies outside every bundle, so no deploy copies it.
func (p Paths) HeldDir() string { return filepath.Join(p.PKI, "held") }

// HeldCert is where the held certificate of a target ID is recorded.
func (p Paths) HeldCert(id string) string {
	return filepath.Join(p.HeldDir(), strings.ReplaceAll(id, "/", "_")+CertExt)
}

// Held reports whether a target has no pair but a held record: its
// certificate is in use on its host and nobody should issue it behind
// the host's back (init leaves it alone; rotate renews it when due).
func Held(t Target) bool {
	if t.Held == "" {
		return false
	}
	if _, err := os.Lstat(t.CertPath()); err == nil {
		return false
	}
	_, err := os.Stat(t.Held)
	return err == nil
}

// InspectHeld classifies a target's held record: ok is false when there
// is none. The certificate must come from authority for the target's
// usage; it is then held, or due, expired or with other SANs than the
// spec's, exactly as a pair would be.
func InspectHeld(t Target, authority *ca.CA, renewBefore time.Duration, now time.Time) (info CertInfo, ok bool) {
	if t.Held == "" {
		return info, false
	}
	data, err := regular.ReadFile(t.Held, regular.MaxPEM)
	if errors.Is(err, fs.ErrNotExist) {
		return info, false
	}
	info = CertInfo{Name: t.ID, CA: authority.Cert.Subject.CommonName, Path: t.Held, Target: &t}
	if err != nil {
		info.Status, info.Reason = StatusInvalid, readError(t.Held, err).Error()
		return info, true
	}
	cert, err := ca.ParseCert(data)
	if err != nil {
		info.Status, info.Reason = StatusInvalid, input.Errorf("%s: %v", t.Held, err).Error()
		return info, true
	}
	fill(&info, cert, now)
	info.Cert = cert
	at := cert.NotBefore.Add(time.Second)
	if authority.Cert.NotBefore.After(at) {
		at = authority.Cert.NotBefore.Add(time.Second)
	}
	if err := authority.Verify(cert, t.Usage(), at); err != nil {
		info.Status, info.Reason = StatusInvalid, fmt.Sprintf("%s: not a valid %s certificate from this PKI's CA: %v", t.Held, t.Kind.Name, err)
		return info, true
	}
	const where = "held on the host"
	life := cert.NotAfter.Sub(cert.NotBefore)
	renewAt := cert.NotBefore.Add(time.Duration(float64(life) * RenewAtFraction))
	missing, extra := sanDiff(cert, t.Hosts)
	switch {
	case now.After(cert.NotAfter):
		info.Status, info.Reason = StatusExpired, where+": expired"
	case cert.NotAfter.Sub(now) <= renewBefore:
		info.Status, info.Reason = StatusDue, fmt.Sprintf("%s: expires within renew-before (%s)", where, cluster.FormatDuration(renewBefore))
	case now.After(renewAt):
		info.Status, info.Reason = StatusDue, where+": past 2/3 of its lifetime"
	case len(missing)+len(extra) > 0:
		info.Status, info.Reason = StatusSANMismatch, fmt.Sprintf("%s: spec wants SANs %v more and %v fewer", where, missing, extra)
	default:
		info.Status, info.Reason = StatusHeld, fmt.Sprintf("%s, expires %s (no key in the PKI: the first renewal issues one)", where, cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return info, true
}
