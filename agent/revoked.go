package agent

import (
	"fmt"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/pki"
)

// revokedInUse says which of the host's pairs carry a serial the
// EtcdCluster's spec.revocations lists: such a pair is due at once, so
// that the controller can put the serial in the CRL without refusing the
// certificate the host serves (the CLI's revoke renews first too). It
// reads the serial from the pair on the host, not from the status: a
// report lost in a kill must not keep a revoked pair in place.
func revokedInUse(ec *v1alpha1.EtcdCluster) func(pki.Target) (bool, string) {
	if len(ec.Spec.Revocations) == 0 {
		return nil
	}
	listed := map[string]string{}
	for _, r := range ec.Spec.Revocations {
		if _, s, ok := pki.ParseSerial(r.Serial); ok {
			listed[s] = r.Reason
		}
	}
	return func(t pki.Target) (bool, string) {
		certPEM, _, err := pki.ReadTargetPair(t)
		if err != nil || certPEM == nil {
			return false, ""
		}
		c, err := ca.ParseCert(certPEM)
		if err != nil {
			return false, ""
		}
		serial := fmt.Sprintf("%x", c.SerialNumber)
		if reason, ok := listed[serial]; ok {
			return true, fmt.Sprintf("its serial %s is in spec.revocations (%s): renewed before the CRL refuses it", pki.ShortSerial(serial), reason)
		}
		return false, ""
	}
}

// either asks a, then b; nil ones are skipped.
func either(a, b func(pki.Target) (bool, string)) func(pki.Target) (bool, string) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(t pki.Target) (bool, string) {
		if ok, why := a(t); ok {
			return ok, why
		}
		return b(t)
	}
}
