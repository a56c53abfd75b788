package verify

import (
	"crypto/x509"
	"fmt"

	"github.com/etcdpki/etcdpki/pki"
)

// caFileNote judges a CA file holding more than one CA. During a CA
// rotation (etcdpki ca rotate) of the spec's PKI that is expected, and the
// check says the stage; outside one, a second CA is trust nobody planned
// and gets a warning.
func caFileNote(in *Inputs, cas []*x509.Certificate) (Status, string) {
	if len(cas) < 2 {
		return OK, ""
	}
	if in.inv != nil {
		if rot, err := pki.ReadCARotation(in.inv); err == nil && rot.InProgress() {
			return OK, "; " + rot.Note()
		}
	}
	return Warn, fmt.Sprintf("; %d CAs trusted outside a CA rotation: a CA nobody rolled out with etcdpki ca rotate is trusted too", len(cas))
}
