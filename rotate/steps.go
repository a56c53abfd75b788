package rotate

// The steps of a run that change something: renew the due pairs, deploy
// the bundles, update the clients; and the serials on disk they are
// proven against.

import (
	"context"
	"fmt"
	"strings"

	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

func (r *leafRun) renew(ctx context.Context, p *Plan, res *Result) error {
	if len(p.Due)+len(p.Missing) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return &runner.InterruptedError{Step: "renewing"}
	}
	var due, missing []pki.Target
	for _, d := range p.Due {
		due = append(due, *d.Target)
	}
	for _, m := range p.Missing {
		missing = append(missing, *m.Target)
	}
	// run holds the PKI directory's lock already.
	opts := issue.Options{Out: r.Log, Now: r.o.Now, LockHeld: true}
	if len(due) > 0 {
		renewed, err := issue.Renew(context.WithoutCancel(ctx), r.Inv, due, issue.RenewOptions{Options: opts})
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		res.Renewed = renewed
		r.Log.Step(runner.StepRenew, "").Done("renewed %d certificates; previous pairs in %s", len(renewed), runner.BackupDir(r.Inv.Spec.PKIDir, renewed))
	}
	if len(missing) > 0 {
		// Init, not Renew: a node new to the spec needs its etcd.conf.yml
		// too. Init reuses everything that exists, but it would create a
		// CA, and rotate never does.
		if _, err := pki.LoadCA(r.Inv.Paths); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		if _, err := issue.Init(context.WithoutCancel(ctx), r.Inv, opts); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		r.Log.Step(stepIssue, strings.Join(pki.IDs(missing), ", ")).Done("issued %d missing certificates: %s", len(missing), strings.Join(pki.IDs(missing), ", "))
		return r.inEffect(missing)
	}
	return nil
}

// deploy runs each changed node's deploy command. Nodes neither restarted
// nor proven (--restart=never --no-verify, or a healthcheck client
// renewed under --restart=always) are in effect once deployed.
func (r *leafRun) deploy(ctx context.Context, p *Plan) error {
	if err := r.DeployNodes(ctx, p.Nodes); err != nil {
		return err
	}
	for _, np := range p.Nodes {
		if !np.Restart && !np.Prove {
			if err := r.inEffect(np.Targets); err != nil {
				return err
			}
		}
	}
	return nil
}

// inEffect records the targets' current serials in the journal.
func (r *leafRun) inEffect(ts []pki.Target) error {
	for _, t := range ts {
		serial, err := runner.DiskSerial(t)
		if err != nil {
			return err
		}
		r.Journal.InEffect[t.ID] = serial
	}
	return r.Journal.Save(r.Inv.Spec.PKIDir, r.o.Now())
}

// clients deploys and restarts clients whose certificate changed.
func (r *leafRun) clients(ctx context.Context, p *Plan) error {
	for _, cp := range p.Clients {
		if err := ctx.Err(); err != nil {
			return &runner.InterruptedError{Step: "updating client " + cp.Client.Name}
		}
		// A client loads a renewed pair at its next handshake too (the
		// apiserver's etcd client is built from the same TLSInfo as etcd);
		// what can be proven from here is that etcd accepts it.
		if err := r.UpdateClient(context.WithoutCancel(ctx), cp, r.o.Restart == RestartAlways, r.proving()); err != nil {
			return err
		}
	}
	return nil
}
