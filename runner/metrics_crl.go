package runner

import (
	"bytes"
	"fmt"
	"time"

	"github.com/etcdpki/etcdpki/pki"
)

// writeCRLMetrics adds the CRL's gauges: seconds until its nextUpdate
// (negative once past it: alert well before 0, rotate re-signs it at half
// its life) and how many serials it revokes. A PKI with no CRL, or one
// that does not parse, gets neither, which an absent() alert catches.
func writeCRLMetrics(b *bytes.Buffer, inv *pki.Inventory, now time.Time) {
	s := inv.Spec
	crl, err := pki.LoadCRL(inv.Paths)
	if err != nil || crl == nil {
		return
	}
	b.WriteString("# HELP etcdpki_crl_next_update_seconds Seconds until the CRL's nextUpdate (negative once past it).\n")
	b.WriteString("# TYPE etcdpki_crl_next_update_seconds gauge\n")
	fmt.Fprintf(b, "etcdpki_crl_next_update_seconds{cluster=%q} %d\n", s.Name, int64(crl.NextUpdate.Sub(now).Seconds()))
	b.WriteString("# HELP etcdpki_crl_revoked How many serials the CRL revokes.\n")
	b.WriteString("# TYPE etcdpki_crl_revoked gauge\n")
	fmt.Fprintf(b, "etcdpki_crl_revoked{cluster=%q} %d\n", s.Name, len(crl.Revoked))
}
