package carotate

import (
	"context"
	"fmt"

	"github.com/etcdpki/etcdpki/issue"
)

// resignCRL has the new CA sign the CRL, with every entry it had, and
// puts it in every bundle (deployed with the stage's bundles): once the
// members trust only the new CA, the CRL is still the CA's own, and every
// revocation survives the rotation. A CRL the new CA signed already is
// left as it is.
func (cr *caRun) resignCRL(ctx context.Context, stage string) error {
	res, err := issue.ResignCRL(context.WithoutCancel(ctx), cr.inv, cr.rot.Next, issue.Options{Now: cr.r.Cfg.Now, LockHeld: true})
	if err != nil {
		return fmt.Errorf("%s: sign the CRL with the new CA: %w", stage, err)
	}
	if res.Changed {
		cr.step(stage, "crl").Done("%s: CRL signed again by the new CA (number %v, %d revoked serials kept)", stage, res.CRL.Number, len(res.CRL.Revoked))
	}
	return nil
}
