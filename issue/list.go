package issue

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
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
	Target *pki.Target       `json:"-"`
	Cert   *x509.Certificate `json:"-"`
}

// List inspects the CA and every certificate the spec calls for.
// renewBefore overrides the spec's threshold when positive.
func List(s *cluster.Spec, renewBefore time.Duration, now time.Time) ([]CertInfo, error) {
	return ListInventory(pki.New(s), renewBefore, now)
}

// ListInventory is List for a spec already expanded, so a caller that
// reads the inventory again (rotate's plan) expands it once.
func ListInventory(inv *pki.Inventory, renewBefore time.Duration, now time.Time) ([]CertInfo, error) {
	s := inv.Spec
	if renewBefore <= 0 {
		renewBefore = s.Leaf.RenewBefore
	}
	p := inv.Paths
	rot, err := readCARotation(inv)
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
		out = append(out, inspectIn(t, rot, renewBefore, now))
	}
	return out, nil
}

// inspectIn is Inspect during a CA rotation as well: a leaf may come from
// either CA and a bundle may trust either or both, as long as it trusts
// the CA that issued its own leaf. Outside a rotation a bundle holding
// more than one CA is usable (the first is ours) but worth a warning.
func inspectIn(t pki.Target, rot *CARotation, renewBefore time.Duration, now time.Time) CertInfo {
	if !rot.InProgress() {
		info := Inspect(t, rot.Old, renewBefore, now)
		if info.Status == StatusOK {
			if certs, err := BundleCAs(t.CADir); err == nil && len(certs) > 1 {
				info.Reason = fmt.Sprintf("warning: %s holds %d CAs outside a CA rotation", filepath.Join(t.CADir, "ca.crt"), len(certs))
			}
		}
		return info
	}
	authority, signer := rot.Old, "old"
	if data, err := os.ReadFile(t.CertPath()); err == nil {
		if c, err := ca.ParseCert(data); err == nil && rot.SignedBy(c) == "next" {
			authority, signer = rot.Next, "next"
		}
	}
	certPEM, keyPEM, err := readPair(t)
	info, _ := inspect(t, authority, certPEM, keyPEM, err, renewBefore, now)
	if signer == "next" {
		info.CA += " (next)"
	}
	if info.Status == StatusInvalid || info.Status == StatusMissing {
		return info
	}
	caPath := filepath.Join(t.CADir, "ca.crt")
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
func Inspect(t pki.Target, authority *ca.CA, renewBefore time.Duration, now time.Time) CertInfo {
	certPEM, keyPEM, err := readPair(t)
	info, _ := inspect(t, authority, certPEM, keyPEM, err, renewBefore, now)
	if info.Status == StatusInvalid || info.Status == StatusMissing {
		return info
	}
	caPath := filepath.Join(t.CADir, "ca.crt")
	if _, err := os.Stat(caPath); errors.Is(err, fs.ErrNotExist) {
		info.Status, info.Reason = StatusInvalid, caPath+": missing (etcdpki init restores it)"
	} else if err := checkSameCA(t.CADir, authority); err != nil {
		info.Status, info.Reason = StatusInvalid, err.Error()
	}
	return info
}

// checkSameCA makes sure a bundle's ca.crt, if present, is our CA. Two CAs
// usually share a name (etcd-ca), so the message tells them apart by serial.
// It reads as the next update will (atomicdir.Read), so a bundle whose link
// a crash left missing is judged by the version that update repairs it to.
func checkSameCA(dir string, a *ca.CA) error {
	path := filepath.Join(dir, "ca.crt")
	data, err := atomicdir.Read(dir, "ca.crt")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return readError(path, err)
	}
	c, err := ca.ParseCert(data)
	if err != nil {
		return inputError("%s: %v", path, err)
	}
	if !c.Equal(a.Cert) {
		return inputError("%s: holds another CA (%q, serial %s), not this PKI's (%q, serial %s); refusing to mix CAs",
			path, c.Subject.CommonName, pki.ShortSerial(Serial(c)), a.Cert.Subject.CommonName, pki.ShortSerial(Serial(a.Cert)))
	}
	return nil
}

// pairCheck is what inspect found beyond the listing: the error behind an
// invalid pair, and a note when the SANs differ from the spec (also for
// pairs that are due for another reason).
type pairCheck struct {
	err     error
	sanNote string
}

// inspect classifies a pair read by readPair (readErr is its error).
func inspect(t pki.Target, authority *ca.CA, certPEM, keyPEM []byte, readErr error, renewBefore time.Duration, now time.Time) (CertInfo, pairCheck) {
	info := CertInfo{Name: t.ID, CA: authority.Cert.Subject.CommonName, Path: t.CertPath(), Target: &t}
	var pc pairCheck
	switch {
	case readErr != nil:
		pc.err = readErr
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
	cert, err := validatePair(t, authority, certPEM, keyPEM)
	if err != nil {
		pc.err = err
		info.Status, info.Reason = StatusInvalid, err.Error()
		return info, pc
	}
	if missing, extra := sanDiff(cert, t.Hosts); len(missing)+len(extra) > 0 {
		pc.sanNote = fmt.Sprintf("spec wants SANs %v more and %v fewer", missing, extra)
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	renewAt := cert.NotBefore.Add(time.Duration(float64(life) * RenewAtFraction))
	switch {
	case now.After(cert.NotAfter):
		info.Status, info.Reason = StatusExpired, "expired"
	case now.Before(cert.NotBefore):
		info.Status, info.Reason = StatusInvalid, "not valid yet (clock skew?)"
		pc.err = inputError("%s: not valid until %s (clock skew?)", t.CertPath(), cert.NotBefore.Format(time.RFC3339))
	case cert.NotAfter.Sub(now) <= renewBefore:
		info.Status, info.Reason = StatusDue, fmt.Sprintf("expires within renew-before (%s)", cluster.FormatDuration(renewBefore))
	case now.After(renewAt):
		info.Status, info.Reason = StatusDue, "past 2/3 of its lifetime"
	case pc.sanNote != "":
		info.Status, info.Reason = StatusSANMismatch, pc.sanNote
	default:
		info.Status = StatusOK
	}
	return info, pc
}

// readPair reads a target's certificate and key. Neither present is not an
// error (both nil); one without the other, or an unreadable file, is an
// input error naming the file.
func readPair(t pki.Target) (certPEM, keyPEM []byte, err error) {
	certPEM, certErr := os.ReadFile(t.CertPath())
	keyPEM, keyErr := os.ReadFile(t.KeyPath())
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil
	case certErr != nil:
		return nil, nil, readError(t.CertPath(), certErr)
	case keyErr != nil:
		return nil, nil, readError(t.KeyPath(), keyErr)
	}
	return certPEM, keyPEM, nil
}

func fill(info *CertInfo, c *x509.Certificate, now time.Time) {
	info.Subject = c.Subject.CommonName
	info.SANs = certx.SANs(c)
	info.NotBefore = c.NotBefore
	info.Expires = c.NotAfter
	left := c.NotAfter.Sub(now)
	info.ResidualSeconds = int64(left / time.Second)
	info.Residual = Residual(left)
	info.Serial = Serial(c)
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
