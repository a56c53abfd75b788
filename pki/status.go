package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
)

// Certificate states, from good to bad.
const (
	StatusOK          = "ok"
	StatusDue         = "due"          // inside renew-before or past 2/3 of its life
	StatusSANMismatch = "san-mismatch" // the spec asks for other SANs
	StatusExpired     = "expired"
	StatusMissing     = "missing"
	StatusInvalid     = "invalid" // unreadable, mismatched key, wrong CA
)

// RenewAtFraction is the share of a certificate's lifetime after which it
// is due regardless of renew-before, as cert-manager does: short-lived
// certificates then renew with a third of their life left.
const RenewAtFraction = 2.0 / 3.0

// CertInfo is one row of `etcdpki certs list`.
type CertInfo struct {
	Name      string    `json:"name"`
	Subject   string    `json:"subject,omitempty"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	// Residual is the time left, rounded down to seconds.
	Residual        string `json:"residual,omitempty"`
	ResidualSeconds int64  `json:"residualSeconds"`
	CA              string `json:"ca"`
	Serial          string `json:"serial,omitempty"`
	Status          string `json:"status"`
	Reason          string `json:"reason,omitempty"`
	Path            string `json:"path"`
	// Key says where a CA's private key is ("file PATH", or "pkcs11:
	// token etcd, object etcd-ca"); empty for leaves.
	Key string `json:"key,omitempty"`
	// Target is the catalogue entry; nil for the CA itself.
	Target *Target           `json:"-"`
	Cert   *x509.Certificate `json:"-"`
}

// List inspects the CA and every certificate of the inventory.
// renewBefore overrides the spec's threshold when positive.
func List(inv *Inventory, renewBefore time.Duration, now time.Time) ([]CertInfo, error) {
	if renewBefore <= 0 {
		renewBefore = inv.Spec.Leaf.RenewBefore
	}
	p := inv.Paths
	rot, err := ReadCARotation(inv)
	if err != nil {
		return nil, err
	}
	authority := rot.Old
	caInfo := CertInfo{Name: "etcd-ca", CA: "-", Path: p.CACert(), Status: StatusOK, Cert: authority.Cert, Key: authority.KeyWhere(p.CAKey())}
	fill(&caInfo, authority.Cert, now)
	if now.After(authority.Cert.NotAfter) {
		caInfo.Status, caInfo.Reason = StatusExpired, "CA expired"
	} else if why, due := CADue(authority.Cert, renewBefore, now); due && !rot.InProgress() {
		caInfo.Status, caInfo.Reason = StatusDue, why
	}
	if caInfo.Status == StatusOK && !rot.InProgress() {
		caInfo.Reason = looseNote(p.CAKey(), CAKeyMode, storeDirs(p.CADir())...)
	}
	out := []CertInfo{caInfo}
	if rot.InProgress() {
		caInfo.Reason = rot.Note() + ": being replaced"
		out[0] = caInfo
		next := CertInfo{Name: "etcd-ca (next)", CA: "-", Path: p.NextCACert(), Status: StatusOK, Cert: rot.Next.Cert, Reason: rot.Note(),
			Key: rot.Next.KeyWhere(filepath.Join(p.NextCADir(), ca.KeyFile))}
		fill(&next, rot.Next.Cert, now)
		out = append(out, next)
	}
	for _, t := range inv.Targets {
		out = append(out, inspectIn(inv, t, rot, renewBefore, now))
	}
	return out, nil
}

// inspectIn is Inspect during a CA rotation as well: a leaf may come from
// either CA and a bundle may trust either or both, as long as it trusts
// the CA that issued its own leaf. Outside a rotation a bundle holding
// more than one CA is usable (the first is ours) but worth a warning, as
// is a file or directory whose mode lets others read what it guards.
func inspectIn(inv *Inventory, t Target, rot *CARotation, renewBefore time.Duration, now time.Time) CertInfo {
	if !rot.InProgress() {
		info := Inspect(t, rot.Old, renewBefore, now)
		if info.Status == StatusOK {
			if certs, err := BundleCAs(t.CADir); err == nil && len(certs) > 1 {
				info.Reason = fmt.Sprintf("warning: %s holds %d CAs outside a CA rotation", t.CAPath(), len(certs))
			} else {
				info.Reason = looseNote(t.KeyPath(), KeyMode, append(inv.dirsOf(t), storeDirs(t.CADir)...)...)
			}
		}
		return info
	}
	certPEM, keyPEM, err := ReadTargetPair(t)
	authority, signer := rot.Old, "old"
	if c, perr := ca.ParseCert(certPEM); err == nil && certPEM != nil && perr == nil && rot.SignedBy(c) == "next" {
		authority, signer = rot.Next, "next"
	}
	info, _ := InspectPair(t, authority, certPEM, keyPEM, err, renewBefore, now)
	if h, ok := InspectHeld(t, authority, renewBefore, now); ok && info.Status == StatusMissing {
		info = h
	}
	if signer == "next" {
		info.CA += " (next)"
	}
	if info.Status == StatusInvalid || info.Status == StatusMissing {
		return info
	}
	caPath := t.CAPath()
	certs, err := BundleCAs(t.CADir)
	switch holds := rot.Holds(certs); {
	case err != nil:
		info.Status, info.Reason = StatusInvalid, err.Error()
	case certs == nil:
		info.Status, info.Reason = StatusInvalid, caPath+": missing (etcdpki ca rotate restores it)"
	case holds == "other":
		info.Status, info.Reason = StatusInvalid, caPath+": holds a CA that is neither the CA in effect nor the next one; refusing to mix CAs"
	case holds != "both" && holds != signer:
		info.Status, info.Reason = StatusInvalid, fmt.Sprintf("%s: trusts the %s CA only, but the certificate is from the %s CA", caPath, holds, signer)
	case info.Status == StatusOK:
		info.Reason = rot.Note()
	}
	return info
}

// Inspect reads one target's pair and says whether it is usable and due.
// A pair is only usable with its bundle's ca.crt: a bundle that trusts
// another CA (or none) is invalid however good the pair is, since the
// member or client holding it would refuse every peer.
func Inspect(t Target, authority *ca.CA, renewBefore time.Duration, now time.Time) CertInfo {
	certPEM, keyPEM, err := ReadTargetPair(t)
	info, _ := InspectPair(t, authority, certPEM, keyPEM, err, renewBefore, now)
	if h, ok := InspectHeld(t, authority, renewBefore, now); ok && info.Status == StatusMissing {
		info = h
	}
	if info.Status == StatusInvalid || info.Status == StatusMissing {
		return info
	}
	caPath := t.CAPath()
	if _, err := os.Stat(caPath); errors.Is(err, fs.ErrNotExist) {
		info.Status, info.Reason = StatusInvalid, caPath+": missing (etcdpki init restores it)"
	} else if _, err := CheckBundleCA(t.CADir, authority); err != nil {
		info.Status, info.Reason = StatusInvalid, err.Error()
	}
	return info
}

// CheckBundleCA makes sure a bundle's ca.crt, if present, is our CA. Two
// CAs usually share a name (etcd-ca), so the message tells them apart by
// serial. It reads as the next update will (atomicdir.Read), so a bundle
// whose link a crash left missing is judged by the version that update
// repairs it to. A ca.crt that is our CA but also holds a private key is
// an error too; repair is then the file as it should be (our CA alone),
// for init to write, and nil otherwise.
func CheckBundleCA(dir string, a *ca.CA) (repair []byte, err error) {
	path := filepath.Join(dir, CAFile)
	data, err := atomicdir.Read(dir, CAFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, readError(path, err)
	}
	c, err := ca.ParseCert(data)
	if err != nil {
		return nil, input.Errorf("%s: %v", path, err)
	}
	if !c.Equal(a.Cert) {
		return nil, input.Errorf("%s: holds another CA (%q, serial %s), not this PKI's (%q, serial %s); refusing to mix CAs",
			path, c.Subject.CommonName, ShortSerial(certx.Serial(c)), a.Cert.Subject.CommonName, ShortSerial(certx.Serial(a.Cert)))
	}
	if err := certsOnly(path, data); err != nil {
		return a.CertPEM, err
	}
	return nil, nil
}

// PairCheck is what InspectPair found beyond the listing: the error
// behind an invalid pair, a note when the SANs differ from the spec (also
// for pairs that are due for another reason), and, when the pair is good
// but a file holds more than it should, the pair as it should be.
type PairCheck struct {
	Err     error
	SANNote string
	// Repaired, when set, is the pair with the extra PEM blocks taken
	// out (Err then says what they were); init writes it.
	Repaired *Pair
}

// Pair is a certificate and its key, as PEM.
type Pair struct{ Cert, Key []byte }

// InspectPair classifies a pair read by ReadPair (readErr is its error).
func InspectPair(t Target, authority *ca.CA, certPEM, keyPEM []byte, readErr error, renewBefore time.Duration, now time.Time) (CertInfo, PairCheck) {
	info := CertInfo{Name: t.ID, CA: authority.Cert.Subject.CommonName, Path: t.CertPath(), Target: &t}
	var pc PairCheck
	switch {
	case readErr != nil:
		pc.Err = readErr
		info.Status, info.Reason = StatusInvalid, readErr.Error()
		return info, pc
	case certPEM == nil:
		info.Status, info.Reason = StatusMissing, "not issued yet"
		return info, pc
	}
	if c, err := ca.ParseCert(certPEM); err == nil {
		fill(&info, c, now)
		info.Cert = c
	}
	extra := errors.Join(certsOnly(t.CertPath(), certPEM), oneKey(t.KeyPath(), keyPEM))
	if extra != nil {
		certPEM, keyPEM = stripCerts(certPEM), firstKey(keyPEM)
	}
	cert, err := validatePair(t, authority, certPEM, keyPEM)
	if err == nil && extra != nil {
		err = input.Errorf("%w", extra)
		pc.Repaired = &Pair{Cert: certPEM, Key: keyPEM}
	}
	if err != nil {
		pc.Err = err
		info.Status, info.Reason = StatusInvalid, err.Error()
		return info, pc
	}
	if missing, extra := sanDiff(cert, t.Hosts); len(missing)+len(extra) > 0 {
		pc.SANNote = fmt.Sprintf("spec wants SANs %v more and %v fewer", missing, extra)
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	renewAt := cert.NotBefore.Add(time.Duration(float64(life) * RenewAtFraction))
	switch {
	case now.After(cert.NotAfter):
		info.Status, info.Reason = StatusExpired, "expired"
	case now.Before(cert.NotBefore):
		info.Status, info.Reason = StatusInvalid, "not valid yet (clock skew?)"
		pc.Err = input.Errorf("%s: not valid until %s (clock skew?)", t.CertPath(), cert.NotBefore.Format(time.RFC3339))
	case cert.NotAfter.Sub(now) <= renewBefore:
		info.Status, info.Reason = StatusDue, fmt.Sprintf("expires within renew-before (%s)", cluster.FormatDuration(renewBefore))
	case now.After(renewAt):
		info.Status, info.Reason = StatusDue, "past 2/3 of its lifetime"
	case pc.SANNote != "":
		info.Status, info.Reason = StatusSANMismatch, pc.SANNote
	default:
		info.Status = StatusOK
	}
	return info, pc
}

// ErrCAKey means a leaf's key is the CA's own key: whoever holds that
// bundle could sign certificates every member trusts.
var ErrCAKey = errors.New("the key is the CA key")

// validatePair checks that a pair belongs together and was issued by a
// for the target's usage. Expiry is the caller's business.
func validatePair(t Target, a *ca.CA, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := ca.ParseCert(certPEM)
	if err != nil {
		return nil, input.Errorf("%s: %v", t.CertPath(), err)
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return nil, input.Errorf("%s: %v", t.KeyPath(), err)
	}
	if certx.KeyMatches(a.Cert, key.Public()) {
		return nil, input.Errorf("%s: %w", t.KeyPath(), ErrCAKey)
	}
	if !certx.KeyMatches(cert, key.Public()) {
		return nil, input.Errorf("%s: key does not match certificate %s", t.KeyPath(), t.CertPath())
	}
	if cert.IsCA {
		return nil, input.Errorf("%s: is a CA certificate (CA:TRUE), not a %s certificate", t.CertPath(), t.Kind.Name)
	}
	// Verify at a time the certificate is valid, so that expiry is
	// reported as expiry and not as a chain error.
	at := cert.NotBefore
	if a.Cert.NotBefore.After(at) {
		at = a.Cert.NotBefore
	}
	at = at.Add(time.Second)
	if err := a.Verify(cert, t.Usage(), at); err != nil {
		return nil, input.Errorf("%s: not a valid %s certificate from this PKI's CA: %v", t.CertPath(), t.Kind.Name, err)
	}
	return cert, nil
}

// sanDiff compares a certificate's SANs with the wanted hosts.
func sanDiff(cert *x509.Certificate, want []string) (missing, extra []string) {
	have := certx.SANs(cert)
	for _, h := range want {
		if !slices.Contains(have, h) {
			missing = append(missing, h)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	return missing, extra
}

func fill(info *CertInfo, c *x509.Certificate, now time.Time) {
	info.Subject = c.Subject.CommonName
	info.SANs = certx.SANs(c)
	info.NotBefore = c.NotBefore
	info.Expires = c.NotAfter
	left := c.NotAfter.Sub(now)
	info.ResidualSeconds = int64(left / time.Second)
	info.Residual = Residual(left)
	info.Serial = certx.Serial(c)
}

// Residual renders time left like kubeadm: "364d", "23h", "<invalid>".
func Residual(d time.Duration) string {
	switch {
	case d <= 0:
		return "<invalid>"
	case d >= 365*24*time.Hour:
		return fmt.Sprintf("%dy", d/(365*24*time.Hour))
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
}
