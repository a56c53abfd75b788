package revoke

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Options control Revoke. Exactly one of Targets and Serials is set.
type Options struct {
	// Targets are certificates in use: each is renewed, deployed and
	// proven before its old serial is revoked.
	Targets []pki.Target
	// Serials (lower-case hex) are certificates no longer in use.
	Serials []string
	// Gone are target IDs the spec no longer has, accepted only to
	// finish the journaled revoke that names them.
	Gone []string
	// Reason is an RFC 5280 reason name (pki.Reasons); "" means
	// unspecified.
	Reason string
	// Force revokes a serial not tied to this CA, and a target again
	// although the certificate in use replaced one revoked before.
	Force bool
	// Out receives one timestamped line per step and per member.
	Out io.Writer
	// Reporter, when set, receives those lines as events (runner.Event)
	// instead of Out; cmd passes runner.TextReporter, a controller its own.
	Reporter runner.Reporter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CommandTimeout bounds one deploy command; 0 means the default.
	CommandTimeout time.Duration
	// RefuseTimeout bounds the wait for every port to refuse the revoked
	// certificate once the CRL is deployed; 0 means 30 seconds.
	RefuseTimeout time.Duration
	// crashAt, in tests, ends the run with errCrash right after the named
	// step was journaled, as a kill would ("STEP unjournaled": after the
	// step, before the journal says so).
	crashAt string
}

var errCrash = errors.New("simulated crash")

// Revoke revokes certificates and proves every member refuses them. It
// takes the PKI directory's lock and keeps a journal, so a run killed at
// any step is finished by running the same command again.
func Revoke(ctx context.Context, inv *pki.Inventory, o Options) (*runner.RevokeResult, error) {
	if err := runner.CheckInventory("revoke", inv); err != nil {
		return nil, err
	}
	q := runner.RevokeRequest{Targets: o.Targets, Serials: o.Serials, Gone: o.Gone, Reason: o.Reason, Force: o.Force,
		RefuseTimeout: o.RefuseTimeout, AfterStep: crashAfter(o.crashAt)}
	if err := q.Check(); err != nil {
		return nil, err
	}
	ro := runner.Config{Out: o.Out, Reporter: o.Reporter, Now: o.Now, CommandTimeout: o.CommandTimeout}
	ro.Defaults()
	r := runner.New(inv, ro, ro.Logger("revoke"))
	res, took, err := runner.Locked(r, func(res *runner.RevokeResult) error { return r.Revoke(ctx, q, res) })
	if res != nil {
		res.Took = took
	}
	return res, err
}

// crashAfter is the test hook for crashAt: errCrash right after the named
// step ran ("STEP unjournaled") or was journaled ("STEP"); nil for "".
func crashAfter(at string) func(step string, journaled bool) error {
	if at == "" {
		return nil
	}
	return func(step string, journaled bool) error {
		if journaled && at == step || !journaled && at == step+" unjournaled" {
			return errCrash
		}
		return nil
	}
}
