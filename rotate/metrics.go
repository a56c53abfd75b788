package rotate

import (
	"fmt"
	"time"

	"github.com/etcdpki/etcdpki/pki"
)

// nextExpiry says which certificate expires first and how long it has
// left, for the one line a run with nothing to do prints. It takes the
// plan's view of the files rather than reading them again.
func nextExpiry(infos []pki.CertInfo, now time.Time) string {
	var first *pki.CertInfo
	n := 0
	for i, info := range infos {
		if info.Target == nil || info.Expires.IsZero() {
			continue
		}
		n++
		if first == nil || info.Expires.Before(first.Expires) {
			first = &infos[i]
		}
	}
	if first == nil {
		return "no certificates"
	}
	return fmt.Sprintf("%d certificates valid on disk, next to expire %s on %s (%s left)",
		n, first.Target.ID, first.Expires.UTC().Format(time.RFC3339), pki.Residual(first.Expires.Sub(now)))
}
