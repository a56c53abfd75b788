package issue

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// Reissued is what Reissue did.
type Reissued struct {
	// NewCA is the CA that replaced an expired one; nil when the CA was
	// kept.
	NewCA *ca.CA
	// OldCAExpired is when the replaced CA expired (zero when kept).
	OldCAExpired time.Time
	// Renewed are the certificates re-issued, in catalogue order.
	Renewed []Renewed
	// Reasons maps a renewed certificate's ID to why it was renewed
	// ("expired", the invalid file's problem, "new CA").
	Reasons map[string]string
}

// ReissueNeeds says what Reissue would do now, without writing: whether
// the CA has expired (and so is replaced), and which certificates are
// renewed and why. A certificate is renewed when it is not simply valid
// (expired, invalid, due or with other SANs than the spec's), or
// when the CA is replaced, since nothing the old CA signed will be
// trusted any more.
func ReissueNeeds(inv *pki.Inventory, now time.Time) (caExpired time.Time, targets []pki.Target, reasons map[string]string, err error) {
	s := inv.Spec
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return time.Time{}, nil, nil, err
	}
	reasons = map[string]string{}
	newCA := !now.Before(authority.Cert.NotAfter)
	if newCA {
		caExpired = authority.Cert.NotAfter
	}
	for _, t := range inv.Targets {
		info := pki.Inspect(t, authority, s.Leaf.RenewBefore, now)
		switch {
		case info.Status == pki.StatusMissing:
			// Never issued: no member runs with it, and issuing it with
			// its bundle and config is init's job.
			continue
		case newCA:
			reasons[t.ID] = "new CA"
		case info.Status == pki.StatusOK, info.Status == pki.StatusHeld:
			continue
		default:
			reasons[t.ID] = info.Status
			if info.Reason != "" && info.Reason != info.Status {
				reasons[t.ID] += ": " + info.Reason
			}
		}
		targets = append(targets, t)
	}
	return caExpired, targets, reasons, nil
}

// Reissue is the recovery of a PKI whose certificates expired: it renews
// every certificate that is not valid and, when the CA itself has
// expired, creates a new CA from the spec and re-issues everything from
// it, rewriting every bundle's ca.crt. Everything switches in one batch
// under the PKI directory's lock, with the previous files (the old CA
// included) in a backup directory; a crash at any step leaves files that
// a second Reissue completes (see RenewOptions.NewCA for the order).
//
// It never rolls a CA out in stages: that is for a CA that still works.
// An expired CA signs nothing any member would accept, so there is
// nothing to stage.
func Reissue(ctx context.Context, inv *pki.Inventory, o Options) (*Reissued, error) {
	s := inv.Spec
	held, err := o.lock(s.PKIDir)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	now := o.now()
	caExpired, targets, reasons, err := ReissueNeeds(inv, now)
	if err != nil {
		return nil, err
	}
	out := &Reissued{OldCAExpired: caExpired, Reasons: reasons}
	ro := RenewOptions{Options: o}
	ro.LockHeld = true
	if !caExpired.IsZero() {
		old, err := pki.LoadCA(inv.Paths)
		if err != nil {
			return nil, err
		}
		if out.NewCA, err = ca.CreateNext(s.CA, old, now); err != nil {
			return nil, fmt.Errorf("create a new CA to replace the one that expired on %s: %w", caExpired.UTC().Format(time.RFC3339), err)
		}
		ro.NewCA = out.NewCA
		o.printf("[ca] created %s (%s, valid until %s) to replace the CA that expired on %s",
			out.NewCA.Cert.Subject.CommonName, certx.KeyDescription(out.NewCA.Cert.PublicKey), out.NewCA.Cert.NotAfter.Format(time.DateOnly),
			caExpired.UTC().Format(time.RFC3339))
	}
	if len(targets) == 0 {
		return out, nil
	}
	if out.Renewed, err = Renew(ctx, inv, targets, ro); err != nil {
		return nil, err
	}
	return out, nil
}
