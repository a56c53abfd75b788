package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// The stages of a CA rotation (etcdpki ca rotate), in order. Each one
// starts only after the one before is proven on the wire.
const (
	// CAStagePrepare creates the next CA beside the current one.
	CAStagePrepare = "prepare"
	// CAStageTrustBoth makes every bundle trust the old and the new CA.
	CAStageTrustBoth = "trust-both"
	// CAStageReissue issues every leaf again from the new CA.
	CAStageReissue = "reissue"
	// CAStageFinish makes every bundle trust the new CA only and retires
	// the old one.
	CAStageFinish = "finish"
)

// CAStages lists the stages in order.
var CAStages = []string{CAStagePrepare, CAStageTrustBoth, CAStageReissue, CAStageFinish}

// CAStageIndex is stage's place in CAStages, -1 for no stage.
func CAStageIndex(stage string) int { return slices.Index(CAStages, stage) }

// NextCADir is where the CA being rolled out by etcdpki ca rotate waits,
// stored like the CA (an atomic store holding ca.crt and ca.key, the key
// 0400). It exists only while a CA rotation is in progress.
func (p Paths) NextCADir() string { return filepath.Join(p.PKI, "etcd-next") }

// NextCAStore is the next CA's atomic store.
func (p Paths) NextCAStore() atomicdir.Store {
	return atomicdir.Store{Dir: p.NextCADir(), Name: CAStoreName}
}

// NextCACert is the next CA's certificate.
func (p Paths) NextCACert() string { return filepath.Join(p.NextCADir(), CAFile) }

// CARotation is where a CA rotation stands, as the files say: which CAs
// each bundle's ca.crt holds and which CA signed each leaf.
type CARotation struct {
	// Old is PKI/etcd, the CA in effect; Next is PKI/etcd-next, nil when
	// no rotation is in progress.
	Old, Next *ca.CA
	// Stage is the furthest stage the files have reached ("" when no
	// rotation is in progress). Whether that stage is proven is the
	// journal's business (package rotate).
	Stage string
}

// InProgress reports whether a next CA exists.
func (r *CARotation) InProgress() bool { return r != nil && r.Next != nil }

// Note is the line certs list and verify show for a rotation in progress.
func (r *CARotation) Note() string {
	if !r.InProgress() {
		return ""
	}
	return "CA rotation in progress, stage " + r.Stage
}

// BundlePEM is the ca.crt a bundle holds in the given stage: the old CA,
// both (old first, so that tools reading only the first certificate keep
// seeing the CA in effect), or the new one.
func (r *CARotation) BundlePEM(stage string) []byte {
	switch stage {
	case CAStagePrepare:
		return r.Old.CertPEM
	case CAStageTrustBoth, CAStageReissue:
		return append(append(bytes.TrimRight(slices.Clone(r.Old.CertPEM), "\n"), '\n'), r.Next.CertPEM...)
	}
	return r.Next.CertPEM
}

// SignedBy says which CA of the rotation issued c: "old", "next" or "".
func (r *CARotation) SignedBy(c *x509.Certificate) string {
	if r.Next != nil && issuedBy(c, r.Next) {
		return "next"
	}
	if issuedBy(c, r.Old) {
		return "old"
	}
	return ""
}

func issuedBy(c *x509.Certificate, a *ca.CA) bool {
	_, err := SignedBy(c, []*x509.Certificate{a.Cert})
	return err == nil
}

// Holds names what a bundle trusts within the rotation: "old", "both",
// "next", or "other" for anything else (a foreign CA, none).
func (r *CARotation) Holds(certs []*x509.Certificate) string {
	var old, next, other bool
	for _, c := range certs {
		// The next CA first: after finish switched PKI/etcd (and before
		// PKI/etcd-next is gone) the two are the same CA, and bundles and
		// leaves must then agree that it is the next one.
		switch {
		case r.Next != nil && c.Equal(r.Next.Cert):
			next = true
		case c.Equal(r.Old.Cert):
			old = true
		default:
			other = true
		}
	}
	switch {
	case other || !old && !next:
		return "other"
	case old && next:
		return "both"
	case next:
		return "next"
	}
	return "old"
}

// ReadCARotation derives the stage of a CA rotation from the files: a
// next CA with every bundle on the old CA is "prepare"; a bundle trusting
// both, "trust-both"; a leaf from the next CA, "reissue"; a bundle
// trusting the next CA only, or PKI/etcd already switched to it,
// "finish".
func ReadCARotation(inv *Inventory) (*CARotation, error) {
	old, err := LoadCA(inv.Paths)
	if err != nil {
		return nil, err
	}
	next, err := LoadNextCA(inv.Paths)
	if err != nil {
		return nil, err
	}
	r := &CARotation{Old: old, Next: next}
	if next == nil {
		return r, nil
	}
	if old.Cert.Equal(next.Cert) {
		// The last step of finish switched PKI/etcd and died before
		// removing PKI/etcd-next.
		r.Stage = CAStageFinish
		return r, nil
	}
	rank := 0
	for _, b := range inv.Bundles {
		certs, err := BundleCAs(b.CADir)
		if err != nil {
			return nil, err
		}
		switch r.Holds(certs) {
		case "both":
			rank = max(rank, 1)
		case "next":
			rank = max(rank, 3)
		}
	}
	for _, t := range inv.Targets {
		if data, err := regular.ReadFile(t.CertPath(), regular.MaxPEM); err == nil {
			if c, err := ca.ParseCert(data); err == nil && r.SignedBy(c) == "next" {
				rank = max(rank, 2)
			}
		}
	}
	r.Stage = CAStages[rank]
	return r, nil
}

// CADue says whether a CA should be replaced, and why: inside a year of
// its end, or inside renewBefore. A CA is replaced with etcdpki ca rotate,
// never by rotate's cron runs, which only warn.
func CADue(c *x509.Certificate, renewBefore time.Duration, now time.Time) (string, bool) {
	left := c.NotAfter.Sub(now)
	switch {
	case left < renewBefore:
		return fmt.Sprintf("CA expires within renew-before (%s): replace it with etcdpki ca rotate", cluster.FormatDuration(renewBefore)), true
	case left < 365*24*time.Hour:
		return "CA expires within a year: replace it with etcdpki ca rotate", true
	}
	return "", false
}

// ReadCAs reads every certificate in a CA file, in file order. A bundle's
// ca.crt holds one CA today; during a staged CA rotation it holds the old
// and the new, and which of them it holds is how the stage is told from
// the files. A CA file that also holds a private key is refused.
func ReadCAs(path string) ([]*x509.Certificate, error) {
	data, err := regular.ReadFile(path, regular.MaxPEM)
	if err != nil {
		return nil, err
	}
	cas, err := certx.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := certsOnly(path, data); err != nil {
		return nil, err
	}
	return cas, nil
}

// BundleCAs reads every certificate of a bundle's ca.crt (dir is the
// store holding it); nil when it has none.
func BundleCAs(dir string) ([]*x509.Certificate, error) {
	certs, err := ReadCAs(filepath.Join(dir, CAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var in input.Coder
	if err != nil && !errors.As(err, &in) {
		return nil, input.Errorf("%w", err)
	}
	return certs, err
}

// CAs reads the CAs the bundle's holder trusts.
func (b Bundle) CAs() ([]*x509.Certificate, error) { return ReadCAs(b.CAPath()) }

// ErrNoSigner means none of the given CAs signed the certificate.
var ErrNoSigner = errors.New("signed by none of the given CAs")

// SignedBy returns which of cas signed leaf, by signature, not by name:
// an old and a new CA may share a subject.
func SignedBy(leaf *x509.Certificate, cas []*x509.Certificate) (*x509.Certificate, error) {
	for _, c := range cas {
		if leaf.CheckSignatureFrom(c) == nil {
			return c, nil
		}
	}
	return nil, ErrNoSigner
}
