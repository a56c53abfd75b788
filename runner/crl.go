package runner

import (
	"context"
	"strings"

	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// KeepCRL is the run's upkeep of the CRL before its plan (issue.KeepCRL):
// signed again before its nextUpdate, in every bundle, and named by every
// node's etcd.env. Bundles whose CRL changed are deployed at once: etcd
// reads the CRL on every accepted connection, so nothing restarts for it.
// A new etcd.env shows in the plan as a change that needs a restart. The
// CA rotation re-signs the CRL itself, so nothing is done during one.
func (r *Runner) KeepCRL(ctx context.Context) error {
	s := r.Inv.Spec
	if next, err := pki.LoadNextCA(r.Inv.Paths); err != nil || next != nil {
		return nil // the plan reports what is wrong, or ca rotate owns the CRL
	}
	up, err := issue.KeepCRL(ctx, r.Inv, r.Cfg.Now(), r.Cfg.DryRun)
	if err != nil || !up.Changed() {
		return err
	}
	would, outcome := "", OutcomeDone
	if r.Cfg.DryRun {
		would, outcome = "would be ", OutcomeDryRun
	}
	line := r.Log.Step(StepCRL, "")
	if up.Resigned != "" {
		line.As(outcome, "[crl] CRL %ssigned again (%s): number %v, %d revoked, next update %s", would, up.Resigned,
			up.CRL.Number, len(up.CRL.Revoked), up.CRL.NextUpdate.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if len(up.Bundles) > 0 {
		line.As(outcome, "[crl] CRL %scopied into the bundles of %s", would, strings.Join(up.Bundles, ", "))
	}
	if len(up.Envs) > 0 {
		line.As(outcome, "[crl] etcd.env %swritten for %s: it names the CRL (etcd ignores CRLs in --config-file); start the members from it, and each is restarted once to read it",
			would, strings.Join(up.Envs, ", "))
	}
	if r.Cfg.DryRun || len(up.Bundles) == 0 {
		return nil
	}
	p := &Rollout{}
	for _, name := range up.Bundles {
		if n, ok := s.Node(name); ok {
			p.Nodes = append(p.Nodes, &NodePlan{Node: n})
		}
	}
	if err := DeployCommands(r.Inv.Paths, p); err != nil {
		return err
	}
	return r.DeployNodes(ctx, p.Nodes)
}
