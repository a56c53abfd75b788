package carotate

// The CA rotation (etcdpki ca rotate). etcd reads its trusted CA file only
// at start, and so does kube-apiserver's etcd client, so a new CA reaches a
// running cluster only through restarts, in stages that never leave a
// member and its peers or clients without a CA in common:
//
//	prepare     the next CA is created in PKI/etcd-next; nothing deployed
//	trust-both  every bundle's ca.crt = old CA + new CA; rolling restart;
//	            proof: a probe certificate from the NEW CA is accepted on
//	            each member's client and peer ports; clients restart
//	reissue     every leaf is issued again from the new CA; no restart;
//	            proof: the renewal's proof (fresh handshakes show the new
//	            serials, the peer certificate accepted) plus the issuer,
//	            the new CA alone, on both ports
//	finish      every bundle's ca.crt = new CA; rolling restart; proof: a
//	            probe from the OLD CA is refused on both ports, one from
//	            the new CA accepted; clients restart; the old CA key goes
//	            to PKI/backup and the new CA becomes PKI/etcd
//
// Where a run stands is read from the files (pki.ReadCARotation: which
// CAs the bundles hold, which CA signed the leaves); the journal
// (State.CA) records each member's proof in each stage, so a run killed at
// any point resumes without restarting a member that finished its stage.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Options control a CA rotation.
type Options struct {
	// Until stops the run after this stage ("" runs to the end).
	Until string
	// DryRun prints the four stages, where the files stand, and changes
	// nothing.
	DryRun bool
	// ClientsRestarted says the operator restarted, by hand, the clients
	// that have no restart template, so the stage waiting for them may
	// end. It applies to the first stage of the run that waits for them.
	ClientsRestarted bool
	// New starts another rotation although the journal shows the CA in
	// effect is the one the last rotation just put there.
	New bool
	// Out receives the timestamped progress lines.
	Out io.Writer
	// Reporter, when set, receives the progress as events instead of Out
	// (runner.Event; cmd passes runner.TextReporter).
	Reporter runner.Reporter
	// HandOffSettle, MemberTimeout and CommandTimeout as in rotate.Options.
	HandOffSettle  time.Duration
	MemberTimeout  time.Duration
	CommandTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result says what a CA rotation run did.
type Result struct {
	// Stages are the stages this run worked on, in order.
	Stages []StageResult
	// WaitingForClients names the clients to restart by hand before the
	// next run (with --clients-restarted) goes on; the run stopped there.
	WaitingForClients []string
	// Stage is where the files stand at the end ("" when no rotation is
	// in progress: never started, or finished).
	Stage string
	Took  time.Duration
}

// StageResult is one stage of a run.
type StageResult struct {
	Stage string
	// Done is true when the stage was found finished already.
	Done bool
	// Restarted are the members restarted in this run, Proven those shown
	// in effect without a restart.
	Restarted []runner.MemberResult
	Proven    []string
	HandOffs  []runner.HandOff
	Start     time.Time
	Took      time.Duration
}

// checkStage refuses an unknown stage name (an input error: exit 2).
func checkStage(name string) error {
	if name == "" || slices.Contains(pki.CAStages, name) {
		return nil
	}
	return input.Errorf("--until %q: unknown stage; the stages are %s", name, strings.Join(pki.CAStages, ", "))
}

// Run rotates the etcd CA, stage by stage, resuming where the files and
// the journal say the last run stopped.
func Run(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	if err := runner.CheckInventory("ca rotate", inv); err != nil {
		return nil, err
	}
	if err := checkStage(o.Until); err != nil {
		return nil, err
	}
	ro := runner.Config{Out: o.Out, Reporter: o.Reporter, HandOffSettle: o.HandOffSettle,
		MemberTimeout: o.MemberTimeout, CommandTimeout: o.CommandTimeout, Now: o.Now, DryRun: o.DryRun}
	ro.Defaults()
	s := inv.Spec
	r := runner.New(inv, ro, ro.Logger("ca rotate"))
	cr := &caRun{o: o, r: r, res: &Result{}, paths: r.Inv.Paths, inv: r.Inv}
	if err := cr.checkSpec(); err != nil {
		return nil, err
	}
	start := time.Now()
	release, err := cr.r.Begin()
	if err != nil {
		return nil, err
	}
	defer release()
	if cr.rot, err = pki.ReadCARotation(cr.inv); err != nil {
		return nil, err
	}
	// Checked before the first stage writes anything: reissue backs up
	// every pair and finish moves the old CA there, after members
	// restarted; a refusal then would come too late to change nothing.
	if err := issue.CheckBackupRoot(cr.paths.Backups()); err != nil {
		return nil, err
	}
	if o.DryRun {
		var b strings.Builder
		cr.printPlan(&b)
		r.Log.Report(runner.Event{Step: runner.StepPlan, Outcome: runner.OutcomeDryRun, Message: b.String()})
		return cr.res, nil
	}
	err = cr.run(ctx)
	cr.res.Took = time.Since(start)
	if rot, rerr := pki.ReadCARotation(cr.inv); rerr == nil {
		cr.res.Stage = rot.Stage
	}
	var ic input.Coder
	if !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode {
		if terr := cr.r.Tighten(); terr != nil && err == nil {
			err = terr
		}
	}
	// LastRun, LastSuccess and LastError are about leaf rotations (the
	// metrics say when one last succeeded): a CA rotation leaves them be.
	if serr := cr.r.Journal.Save(s.PKIDir, ro.Now()); serr != nil && err == nil {
		err = serr
	}
	return cr.res, err
}

type caRun struct {
	o   Options
	r   *runner.Runner
	rot *pki.CARotation
	// inv is the spec expanded once: every certificate and bundle.
	inv   *pki.Inventory
	res   *Result
	paths pki.Paths
	// clientsUsed is set once --clients-restarted let a stage go on.
	clientsUsed bool
}

// step starts the event of a line about stage (pki.CAStage*) and target
// (a member, a client, or "" for the whole stage).
func (cr *caRun) step(stage, target string) runner.Line { return cr.r.Log.Step(stage, target) }

// checkSpec refuses, before anything changes, a spec a CA rotation cannot
// work with: every member must be restarted twice, and every changed
// bundle deployed.
func (cr *caRun) checkSpec() error {
	s := cr.inv.Spec
	for _, n := range s.Nodes {
		if n.Restart == "" {
			return input.Errorf("node %s: a CA rotation restarts every member, but the spec has no restart command (set nodes[].restart)", n.Name)
		}
		if !s.Local && n.Deploy == "" {
			return input.Errorf("node %s: a CA rotation changes its bundle, but the spec has no deploy command to copy it to %s (set nodes[].deploy)", n.Name, n.Dir)
		}
	}
	return nil
}

// journal returns the CA rotation's journal for the next CA, starting a
// fresh one when it is about another CA.
func (cr *caRun) journal() *runner.CAJournal {
	st := cr.r.Journal
	serial := certx.Serial(cr.rot.Next.Cert)
	if st.CA == nil || st.CA.Next != serial {
		st.CA = &runner.CAJournal{Next: serial}
	}
	if st.CA.Proofs == nil {
		st.CA.Proofs = map[string]map[string]runner.CAProof{}
	}
	if st.CA.Done == nil {
		st.CA.Done = map[string]time.Time{}
	}
	return st.CA
}

func (cr *caRun) proven(stage, who string) bool {
	_, ok := cr.journal().Proofs[stage][who]
	return ok
}

func (cr *caRun) record(stage, who string, p runner.CAProof) {
	j := cr.journal()
	if j.Proofs[stage] == nil {
		j.Proofs[stage] = map[string]runner.CAProof{}
	}
	p.At = cr.r.Cfg.Now().UTC()
	j.Proofs[stage][who] = p
}

func (cr *caRun) save() error { return cr.r.Journal.Save(cr.inv.Spec.PKIDir, cr.r.Cfg.Now()) }

func (cr *caRun) run(ctx context.Context) error {
	until := cr.o.Until
	if until == "" {
		until = pki.CAStageFinish
	}
	if !cr.rot.InProgress() {
		st := cr.r.Journal.CA
		if st != nil && st.Next == certx.Serial(cr.rot.Old.Cert) && !st.Done[pki.CAStageFinish].IsZero() && !cr.o.New {
			cr.step(pki.CAStageFinish, "").Serial(st.Next).Skipped("nothing to do: the CA rotation to %s (serial %s) finished at %s; to replace this CA too, run again with --new",
				cr.rot.Old.Cert.Subject.CommonName, pki.ShortSerial(st.Next), st.Done[pki.CAStageFinish].Format(time.RFC3339))
			return nil
		}
	}
	for _, stage := range pki.CAStages {
		if err := ctx.Err(); err != nil {
			return &runner.InterruptedError{Step: "CA rotation stage " + stage}
		}
		sr := StageResult{Stage: stage, Start: time.Now()}
		var (
			stop bool
			err  error
		)
		switch stage {
		case pki.CAStagePrepare:
			sr.Done, err = cr.prepare()
		case pki.CAStageTrustBoth, pki.CAStageFinish:
			sr.Done, stop, err = cr.restartStage(ctx, stage, &sr)
		case pki.CAStageReissue:
			sr.Done, err = cr.reissue(ctx, &sr)
		}
		sr.Took = time.Since(sr.Start)
		cr.res.Stages = append(cr.res.Stages, sr)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		if stage == until {
			if stage != pki.CAStageFinish {
				cr.step(stage, "").Done("stopped after stage %s (--until); the next run goes on with stage %s", stage, pki.CAStages[pki.CAStageIndex(stage)+1])
			}
			return nil
		}
	}
	return nil
}

// prepare creates the next CA, from the spec's CA settings as they are
// now (a changed ca.keyAlgorithm or keySize takes effect here), in an
// atomic store of its own: a crash leaves it whole or absent.
func (cr *caRun) prepare() (bool, error) {
	if cr.rot.InProgress() {
		cr.step(pki.CAStagePrepare, "").Serial(certx.Serial(cr.rot.Next.Cert)).Done("prepare: done: next CA %q (%s, serial %s) in %s", cr.rot.Next.Cert.Subject.CommonName,
			certx.KeyDescription(cr.rot.Next.Cert.PublicKey), pki.ShortSerial(certx.Serial(cr.rot.Next.Cert)), cr.paths.NextCADir())
		return true, nil
	}
	next, err := ca.CreateNext(cr.inv.Spec.CA, cr.rot.Old, cr.r.Cfg.Now())
	if err != nil {
		return false, err
	}
	if err := issue.WriteNextCA(cr.paths, next); err != nil {
		return false, fmt.Errorf("prepare: %w", err)
	}
	cr.rot.Next, cr.rot.Stage = next, pki.CAStagePrepare
	cr.journal()
	if err := cr.save(); err != nil {
		return false, err
	}
	cr.step(pki.CAStagePrepare, "").Serial(certx.Serial(next.Cert)).Done("prepare: created the next CA %q (%s, serial %s, valid until %s) in %s; nothing deployed", next.Cert.Subject.CommonName,
		certx.KeyDescription(next.Cert.PublicKey), pki.ShortSerial(certx.Serial(next.Cert)), next.Cert.NotAfter.Format(time.DateOnly), cr.paths.NextCADir())
	return false, nil
}

// bundleStores are the stores holding a ca.crt: every node's, the
// apiserver's, every extra client's.
func (cr *caRun) bundleStores() []atomicdir.Store {
	var sts []atomicdir.Store
	for _, b := range cr.inv.Bundles {
		sts = append(sts, b.CAStore())
	}
	return sts
}

// writeBundles puts data in every bundle's ca.crt, all in one batch
// (issue.WriteCABundles), and returns how many changed.
func (cr *caRun) writeBundles(data []byte) (int, error) {
	return issue.WriteCABundles(cr.inv, data)
}

// stageDone reports whether the files have moved past stage, or the
// journal records it proven.
func (cr *caRun) stageDone(stage string) bool {
	if !cr.journal().Done[stage].IsZero() {
		return true
	}
	return pki.CAStageIndex(cr.rot.Stage) > pki.CAStageIndex(stage)
}
