package issue

import (
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// loadOrCreateCA loads PKI/etcd/ca.{crt,key}, or creates a CA in memory
// when neither exists (fresh, when set, is the one to use then). One
// without the other is an error: never guess. The files are read as the
// next write will see them, so a crash that left the CA's version
// complete but a link missing reads as the CA, not as no CA.
func loadOrCreateCA(inv *pki.Inventory, now time.Time, fresh *ca.CA) (*ca.CA, bool, error) {
	s, p := inv.Spec, inv.Paths
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	a, err := pki.LoadCAIfAny(p)
	switch {
	case err != nil:
		return nil, false, err
	case a == nil && fresh != nil:
		return fresh, true, nil
	case a == nil:
		a, err := ca.Create(s.CA, now)
		return a, true, err
	}
	if now.After(a.Cert.NotAfter) {
		return nil, false, input.Errorf("%s: CA expired on %s; a new CA must be rolled out in stages", p.CACert(), a.Cert.NotAfter.Format(time.DateOnly))
	}
	return a, false, nil
}

// refuseDuringCARotation keeps init and certs renew from writing a bundle
// with the old CA alone in the middle of a CA rotation, which would undo
// its trust-both stage; etcdpki ca rotate re-issues from the right CA.
func refuseDuringCARotation(p pki.Paths, what string) error {
	next, err := pki.LoadNextCA(p)
	if err != nil || next == nil {
		return err
	}
	return input.Errorf("%s: a CA rotation is in progress (%s holds the next CA); finish it with etcdpki ca rotate first", what, p.NextCADir())
}
