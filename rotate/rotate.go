// rotate.go holds Run and the run's steps in order: plan, renew,
// deploy, proofs or the roll (runner/roll.go), then the clients.

package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Run does one rotation: plan, renew, deploy, proofs and restarts, clients.
// Cancelling ctx stops it at the next step boundary (a member being
// restarted is still waited for), so SIGTERM never leaves a member half
// rolled.
func Run(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	if err := runner.CheckInventory("rotate", inv); err != nil {
		return nil, err
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	op := "rotate"
	if o.Recover {
		op = "recover"
	}
	return newLeafRun(o, inv, runner.NewReportLogger(o.Reporter, op)).run(ctx)
}

// leafRun is one leaf rotation (or --recover) on the shared runner: the
// leaf-only options and what only the leaf rotation tracks.
type leafRun struct {
	*runner.Runner
	o Options
	// expired reports the expired server certificates probes accepted.
	expired *expiredServed
	// quiet drops the "nothing due" line: --watch checks often.
	quiet bool
}

// newLeafRun builds a leaf rotation over inv (Watch hands it the
// inventory of the spec it loaded last).
func newLeafRun(o Options, inv *pki.Inventory, log *runner.Logger) *leafRun {
	return &leafRun{Runner: runner.New(inv, o.Config(), log), o: o}
}

func (r *leafRun) run(ctx context.Context) (*Result, error) {
	start := time.Now()
	s := r.Inv.Spec
	res := &Result{}
	release, err := r.Begin()
	if err != nil {
		return nil, err
	}
	defer release()
	st := r.Journal
	if st.Revoke != nil {
		// Its serials may not be refused everywhere yet.
		r.Log.Step(stepRevoke, "").Warn("%s", st.Revoke.Note())
	}
	// Probes accept an expired server certificate from the etcd CA, each
	// reported as a warning: a cluster running on expired certificates
	// is still to be checked and rotated (see expired.go).
	r.expired = &expiredServed{seen: map[string]bool{}, log: r.Log}
	r.Etcd.ProbeOpts = []probe.Option{probe.TolerateExpired(r.expired.note)}
	if r.o.Recover {
		err = r.recover(ctx, res)
	} else {
		err = r.rotate(ctx, res)
	}
	res.Took = time.Since(start)
	// Bad input changes nothing on disk, the journal and the metrics
	// included: a refusal is not a run.
	var ic input.Coder
	if r.o.DryRun || errors.As(err, &ic) && ic.ExitCode() == input.ExitCode {
		return res, err
	}
	if terr := r.Tighten(); terr != nil && err == nil {
		err = terr
	}
	st.LastRun = r.o.Now().UTC()
	if err != nil {
		st.LastError = err.Error()
	} else {
		st.LastError = ""
		st.LastSuccess = st.LastRun
	}
	if serr := st.Save(s.PKIDir, r.o.Now()); serr != nil && err == nil {
		err = serr
	}
	if r.o.MetricsFile != "" {
		if merr := runner.WriteMetrics(r.o.MetricsFile, r.Inv, st, err == nil, r.o.Now()); merr != nil {
			r.Log.Step(stepMetrics, r.o.MetricsFile).Err(merr).Warn("warning: metrics file: %v", merr)
		}
	}
	return res, err
}

func (r *leafRun) rotate(ctx context.Context, res *Result) error {
	now := r.o.Now()
	// A renewal backs up the pairs it replaces: a PKI/backup it cannot
	// use is refused before the CRL upkeep writes anything.
	if err := issue.CheckBackupRoot(r.Inv.Paths.Backups()); err != nil {
		return err
	}
	if err := r.KeepCRL(ctx); err != nil {
		return err
	}
	p, err := makePlan(r.Inv, r.Journal, r.o.RenewBefore, now)
	if err != nil {
		return err
	}
	res.Plan = p
	for _, w := range p.Warnings {
		r.Log.Step(stepCheck, "").Warn("warning: %s", w)
	}
	if err := r.caExpired(p); err != nil {
		return err
	}
	expired := expiredCerts(p.Certs)
	if len(expired) > 0 {
		r.Log.Step(stepCheck, "").Warn("warning: certificates already expired: %s; a member or client restarted now could not connect. Renewing them in this run, without restarts where the cluster still serves",
			describeExpired(expired))
	}
	if err := r.recordBaseline(p, now); err != nil {
		return err
	}
	if p.Empty() {
		if !r.quiet || r.o.DryRun {
			r.Log.Step(stepCheck, "").Skipped("nothing due: %s; %s", nextExpiry(p.Certs, now), r.provenInEffect(ctx, p))
		}
		return nil
	}
	h, err := r.gate(ctx, p)
	if err != nil {
		return err
	}
	if r.o.DryRun {
		var b strings.Builder
		p.Print(&b, r.o.Restart)
		r.Log.Report(runner.Event{Step: runner.StepPlan, Outcome: runner.OutcomeDryRun, Message: b.String()})
		return nil
	}
	if err := r.apply(ctx, p, res, h); err != nil {
		return err
	}
	if len(expired) > 0 || r.expired.any() {
		lines, err := r.Etcd.ProveUnexpired(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		r.Log.Step(runner.StepProve, "").Done("the cluster was running on expired certificates and is no longer: every client and peer port serves an unexpired certificate (fresh handshakes, expired ones refused): %s",
			strings.Join(lines, "; "))
	}
	took := time.Since(r.Log.Start)
	r.Log.Step(stepDone, "").Took(took).Done("%s, in %s", doneLine(res), runner.Round(took))
	return nil
}

// recordBaseline journals what the plan saw for the first time (the
// serials and start-time files members run with) before anything
// changes; a dry run records nothing.
func (r *leafRun) recordBaseline(p *Plan, now time.Time) error {
	if r.o.DryRun || len(p.Baseline)+len(p.StartedBaseline) == 0 {
		return nil
	}
	for id, serial := range p.Baseline {
		r.Journal.InEffect[id] = serial
	}
	for node, started := range p.StartedBaseline {
		r.Journal.Started[node] = started
	}
	return r.Journal.Save(r.Inv.Spec.PKIDir, now)
}

// gate decides each member's restart or proof and orders them. What is
// known without the cluster is checked first, so that a plan that cannot
// work says so (exit 2) even when no member answers. The precondition
// comes before the first change: a cluster that is not healthy gets
// nothing renewed, deployed, proven or restarted (a dry run shows the
// refusal in its plan instead). In auto mode the probe also tells each
// member's etcd version. h is nil when the plan needs no probe.
func (r *leafRun) gate(ctx context.Context, p *Plan) (*probe.Cluster, error) {
	s := r.Inv.Spec
	p.decide(s, r.o.Restart, r.o.NoVerify, nil)
	if err := p.check(s, r.o.Restart); err != nil {
		return nil, err
	}
	var h *probe.Cluster
	if p.Restarts() > 0 || p.Proofs() > 0 || r.proving() && len(p.Clients) > 0 || r.o.Restart == RestartAuto && p.leaves() {
		var err error
		if h, err = r.Etcd.Health(context.WithoutCancel(ctx)); err != nil {
			return nil, err
		}
		if herr := runner.HealthyOrError(s, h, "refusing to change anything"); herr != nil {
			if rerr := r.recoverNeeded(p, h); rerr != nil {
				if !r.o.DryRun {
					return nil, rerr
				}
				herr = rerr // the dry run's plan says it
			}
			if !r.o.DryRun {
				return nil, herr
			}
			p.OrderNote, p.Refusal = herr.Error(), herr.Error()
		}
		p.decide(s, r.o.Restart, r.o.NoVerify, h)
		if err := p.check(s, r.o.Restart); err != nil {
			return nil, err
		}
	}
	p.SetOrder(s, h)
	for _, np := range p.Nodes {
		if r.o.Restart == RestartNever && len(np.Reasons) > 0 {
			r.Log.Step(stepCheck, np.Node.Name).Warn("warning: %s: %s", np.Node.Name, verdict(np, r.o.Restart))
		}
	}
	return h, nil
}

// apply carries the plan out: renew, deploy, prove what needs no restart
// (proofs change nothing, so the members still to restart are restarted
// from a cluster just shown healthy under its leader), roll the rest,
// then the clients.
func (r *leafRun) apply(ctx context.Context, p *Plan, res *Result, h *probe.Cluster) error {
	if err := r.renew(ctx, p, res); err != nil {
		return err
	}
	if err := r.deploy(ctx, p); err != nil {
		return err
	}
	var leader probe.ID
	if h != nil {
		leader = h.Leader
	}
	if err := r.ProveNodes(ctx, &p.Rollout, &res.Tally, leader); err != nil {
		return err
	}
	if err := r.Roll(ctx, &p.Rollout, &res.Tally, nil); err != nil {
		return err
	}
	return r.clients(ctx, p)
}

// doneLine is the run's last line: what was renewed, proven, restarted.
func doneLine(res *Result) string {
	done := fmt.Sprintf("done: %d certificates renewed", len(res.Renewed))
	if len(res.Proofs) > 0 {
		done += fmt.Sprintf(", %d members in effect without restart (proofs %s)", len(res.Proofs), runner.Round(res.ProofTime()))
	}
	done += fmt.Sprintf(", %d members restarted", len(res.Members))
	if len(res.Members) > 0 {
		done += fmt.Sprintf(" (restart-to-healthy %s)", runner.Round(res.Floor()))
	}
	return done
}

// proving reports whether renewed certificates are proven in effect
// rather than restarted into it (auto, and never without --no-verify).
func (r *leafRun) proving() bool {
	return r.o.Restart != RestartAlways && !r.o.NoVerify
}
