// rotate.go holds Run and the run's steps in order: plan, renew,
// deploy, proofs or the roll (roll.go), then the clients.

package rotate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// Run does one rotation: plan, renew, deploy, proofs and restarts, clients.
// Cancelling ctx stops it at the next step boundary (a member being
// restarted is still waited for), so SIGTERM never leaves a member half
// rolled.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &runner{o: o, log: newLogger(o.Out), etcd: &etcdCluster{spec: o.Spec, paths: pki.Paths{PKI: o.Spec.PKIDir}}}
	return r.run(ctx)
}

type runner struct {
	o    Options
	log  *logger
	etcd *etcdCluster
	st   *State
	// expired reports the expired server certificates probes accepted.
	expired *expiredServed
	// quiet drops the "nothing due" line: --watch checks often.
	quiet bool
	// afterRestart, when set, runs once a restarted member passed every
	// health gate and before the journal records it: the CA rotation's
	// proof that the member loaded the trust it was restarted for.
	afterRestart func(ctx context.Context, np *NodePlan) error
}

// begin takes the PKI directory's lock (a dry run changes nothing and
// takes none), loads the journal into r.st and moves stores of the
// layout before named stores into theirs (issue.MigrateLayout). The leaf rotation and the
// CA rotation start alike; release drops the lock.
func (r *runner) begin() (release func(), err error) {
	release = func() {}
	if err := checkPKIExists(r.o.Spec.PKIDir); err != nil {
		return nil, err
	}
	if !r.o.DryRun {
		l, err := acquire(r.o.Spec.PKIDir)
		if err != nil {
			return nil, err
		}
		release = l.release
	}
	if r.st, err = LoadState(r.o.Spec.PKIDir); err != nil {
		release()
		return nil, err
	}
	if err := r.migrateLayout(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	start := time.Now()
	s := r.o.Spec
	res := &Result{}
	release, err := r.begin()
	if err != nil {
		return nil, err
	}
	defer release()
	st := r.st
	// Probes accept an expired server certificate from the etcd CA, each
	// reported as a warning: a cluster running on expired certificates
	// is still to be checked and rotated (see expired.go).
	r.expired = &expiredServed{seen: map[string]bool{}, log: r.log}
	ctx = probe.TolerateExpired(ctx, r.expired.note)
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
	if terr := r.tighten(); terr != nil && err == nil {
		err = terr
	}
	st.LastRun = r.o.Now().UTC()
	if err != nil {
		st.LastError = err.Error()
	} else {
		st.LastError = ""
		st.LastSuccess = st.LastRun
	}
	if serr := st.save(s.PKIDir, r.o.Now()); serr != nil && err == nil {
		err = serr
	}
	if r.o.MetricsFile != "" {
		if merr := writeMetrics(r.o.MetricsFile, s, st, err == nil, r.o.Now()); merr != nil {
			r.log.printf("warning: metrics file: %v", merr)
		}
	}
	return res, err
}

// tighten re-tightens the modes of what the PKI directory's writers own
// (see issue.Tighten) at the end of every run that was not refused: a
// loose key in a store this run did not write would otherwise stay loose.
func (r *runner) tighten() error {
	fixed, err := issue.Tighten(r.o.Spec)
	for _, f := range fixed {
		r.log.printf("tightened %s", f)
	}
	return err
}

func (r *runner) rotate(ctx context.Context, res *Result) error {
	s := r.o.Spec
	now := r.o.Now()
	p, err := makePlan(s, r.st, r.o.RenewBefore, now)
	if err != nil {
		return err
	}
	res.Plan = p
	for _, w := range p.Warnings {
		r.log.printf("warning: %s", w)
	}
	if err := r.caExpired(p); err != nil {
		return err
	}
	expired := expiredCerts(p.Certs)
	if len(expired) > 0 {
		r.log.printf("warning: certificates already expired: %s; a member or client restarted now could not connect. Renewing them in this run, without restarts where the cluster still serves",
			describeExpired(expired))
	}
	if !r.o.DryRun && len(p.Baseline)+len(p.StartedBaseline) > 0 {
		for id, serial := range p.Baseline {
			r.st.InEffect[id] = serial
		}
		for node, started := range p.StartedBaseline {
			r.st.Started[node] = started
		}
		if err := r.st.save(s.PKIDir, now); err != nil {
			return err
		}
	}
	if p.Empty() {
		if !r.quiet || r.o.DryRun {
			r.log.printf("nothing due: %s; %s", nextExpiry(p.Certs, now), r.provenInEffect(ctx, p))
		}
		return nil
	}
	// What is known without the cluster is checked first, so that a plan
	// that cannot work says so (exit 2) even when no member answers.
	p.decide(s, r.o.Restart, r.o.NoVerify, nil)
	if err := p.check(s, r.o.Restart); err != nil {
		return err
	}
	// The precondition comes before the first change: a cluster that is
	// not healthy gets nothing renewed, deployed, proven or restarted. In
	// auto mode the probe also tells each member's etcd version.
	var h *probe.Cluster
	if p.restarts() > 0 || p.proofs() > 0 || r.proving() && len(p.Clients) > 0 || r.o.Restart == RestartAuto && p.leaves() {
		if h, err = r.etcd.health(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		if herr := healthyOrError(s, h, "refusing to change anything"); herr != nil {
			if rerr := r.recoverNeeded(p, h); rerr != nil {
				if !r.o.DryRun {
					return rerr
				}
				herr = rerr // the dry run's plan says it
			}
			if !r.o.DryRun {
				return herr
			}
			p.OrderNote, p.Refusal = herr.Error(), herr.Error()
		}
		p.decide(s, r.o.Restart, r.o.NoVerify, h)
		if err := p.check(s, r.o.Restart); err != nil {
			return err
		}
	}
	p.order(s, h)
	for _, np := range p.Nodes {
		if r.o.Restart == RestartNever && len(np.Reasons) > 0 {
			r.log.printf("warning: %s: %s", np.Node.Name, np.verdict(r.o.Restart))
		}
	}
	if r.o.DryRun {
		p.Print(r.o.Out, r.o.Restart)
		return nil
	}
	if err := r.renew(ctx, p, res); err != nil {
		return err
	}
	if err := r.deploy(ctx, p); err != nil {
		return err
	}
	// Proofs first: they change nothing, so the members still to restart
	// are restarted from a cluster just shown healthy under its leader.
	var leader probe.ID
	if h != nil {
		leader = h.Leader
	}
	if err := r.prove(ctx, p, res, leader); err != nil {
		return err
	}
	if err := r.roll(ctx, p, res); err != nil {
		return err
	}
	if err := r.clients(ctx, p); err != nil {
		return err
	}
	if len(expired) > 0 || r.expired.any() {
		lines, err := r.etcd.proveUnexpired(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		r.log.printf("the cluster was running on expired certificates and is no longer: every client and peer port serves an unexpired certificate (fresh handshakes, expired ones refused): %s",
			strings.Join(lines, "; "))
	}
	done := fmt.Sprintf("done: %d certificates renewed", len(res.Renewed))
	if len(res.Proofs) > 0 {
		done += fmt.Sprintf(", %d members in effect without restart (proofs %s)", len(res.Proofs), round(res.ProofTime()))
	}
	done += fmt.Sprintf(", %d members restarted", len(res.Members))
	if len(res.Members) > 0 {
		done += fmt.Sprintf(" (restart-to-healthy %s)", round(res.Floor()))
	}
	r.log.printf("%s, in %s", done, round(time.Since(r.log.start)))
	return nil
}

// proving reports whether renewed certificates are proven in effect
// rather than restarted into it (auto, and never without --no-verify).
func (r *runner) proving() bool {
	return r.o.Restart != RestartAlways && !r.o.NoVerify
}

func (r *runner) renew(ctx context.Context, p *Plan, res *Result) error {
	if len(p.Due)+len(p.Missing) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return &InterruptedError{Step: "renewing"}
	}
	var due, missing []pki.Target
	for _, d := range p.Due {
		due = append(due, *d.Target)
	}
	for _, m := range p.Missing {
		missing = append(missing, *m.Target)
	}
	// run holds the PKI directory's lock already.
	opts := issue.Options{Out: r.log, Now: r.o.Now, LockHeld: true}
	if len(due) > 0 {
		renewed, err := issue.Renew(context.WithoutCancel(ctx), r.o.Spec, due, issue.RenewOptions{Options: opts})
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		res.Renewed = renewed
		r.log.printf("renewed %d certificates; previous pairs in %s", len(renewed), backupDir(r.o.Spec.PKIDir, renewed))
	}
	if len(missing) > 0 {
		// Init, not Renew: a node new to the spec needs its etcd.conf.yml
		// too. Init reuses everything that exists, but it would create a
		// CA, and rotate never does.
		if _, err := issue.LoadCA(r.o.Spec.PKIDir); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		if _, err := issue.Init(context.WithoutCancel(ctx), r.o.Spec, opts); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		r.log.printf("issued %d missing certificates: %s", len(missing), strings.Join(pki.IDs(missing), ", "))
		return r.inEffect(missing)
	}
	return nil
}

// backupDir is the run's backup directory: each Renewed.Backup is it
// joined with the store's path below the PKI directory.
func backupDir(pki string, rs []issue.Renewed) string {
	for _, r := range rs {
		if r.Backup == "" {
			continue
		}
		if rel, err := filepath.Rel(pki, r.Target.Dir); err == nil {
			return strings.TrimSuffix(r.Backup, string(filepath.Separator)+rel)
		}
	}
	return "(none: nothing was replaced)"
}

// deploy runs each changed node's deploy command. Nodes neither restarted
// nor proven (--restart=never --no-verify, or a healthcheck client
// renewed under --restart=always) are in effect once deployed.
func (r *runner) deploy(ctx context.Context, p *Plan) error {
	if err := r.deployNodes(ctx, p.Nodes); err != nil {
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

// deployNodes runs each node's deploy command in order, stopping at the
// first failure. A deploy, once started, runs to its end (bounded by
// --command-timeout): a cancelled context stops the run between nodes.
func (r *runner) deployNodes(ctx context.Context, nodes []*NodePlan) error {
	for _, np := range nodes {
		if np.DeployCmd == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "deploying to " + np.Node.Name}
		}
		t0 := time.Now()
		if err := runCommand(context.WithoutCancel(ctx), "deploy to node "+np.Node.Name, np.DeployCmd, r.o.CommandTimeout); err != nil {
			return &MemberError{Member: np.Node.Name, Err: err}
		}
		r.log.printf("%s: deployed in %s", np.Node.Name, round(time.Since(t0)))
	}
	return nil
}

// inEffect records the targets' current serials in the journal.
func (r *runner) inEffect(ts []pki.Target) error {
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return err
		}
		r.st.InEffect[t.ID] = serial
	}
	return r.st.save(r.o.Spec.PKIDir, r.o.Now())
}

// diskSerials reads the targets' current serials, by ID.
func diskSerials(ts []pki.Target) (map[string]string, error) {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return nil, err
		}
		m[t.ID] = serial
	}
	return m, nil
}

func diskSerial(t pki.Target) (string, error) {
	c, err := readCert(t.CertPath())
	if err != nil {
		return "", fmt.Errorf("certificate %s: %w", t.ID, err)
	}
	return issue.Serial(c), nil
}

func targetOf(ts []pki.Target, kind string) (pki.Target, bool) {
	for _, t := range ts {
		if t.Kind.Name == kind {
			return t, true
		}
	}
	return pki.Target{}, false
}

// clients deploys and restarts clients whose certificate changed.
func (r *runner) clients(ctx context.Context, p *Plan) error {
	for _, cp := range p.Clients {
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "updating client " + cp.Client.Name}
		}
		// A client loads a renewed pair at its next handshake too (the
		// apiserver's etcd client is built from the same TLSInfo as etcd);
		// what can be proven from here is that etcd accepts it.
		if err := r.updateClient(context.WithoutCancel(ctx), cp, r.o.Restart == RestartAlways, r.proving()); err != nil {
			return err
		}
	}
	return nil
}

// updateClient deploys a client's renewed files, runs its restart
// command when restart is set, shows the members accept its certificate
// when prove is set, then records the certificate in effect.
func (r *runner) updateClient(ctx context.Context, cp *ClientPlan, restart, prove bool) error {
	did := []string{}
	if cp.DeployCmd != "" {
		if err := runCommand(ctx, "deploy to client "+cp.Client.Name, cp.DeployCmd, r.o.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "deployed")
	}
	if restart && cp.RestartCmd != "" {
		if err := runCommand(ctx, "restart client "+cp.Client.Name, cp.RestartCmd, r.o.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "restarted")
	}
	if len(did) == 0 {
		did = append(did, "new pair in place")
		if !r.o.Spec.Local {
			did[0] += fmt.Sprintf(" (no deploy command: copy %s to its hosts)", cp.Target.Dir)
		}
	}
	serial, err := diskSerial(cp.Target)
	if err != nil {
		return err
	}
	if prove {
		took, err := r.etcd.proveClient(ctx, cp, serial)
		if err != nil {
			return err
		}
		did = append(did, fmt.Sprintf("accepted with a linearizable read on every client port (%d ms)", took.Milliseconds()))
	}
	r.st.InEffect[cp.Target.ID] = serial
	if err := r.st.save(r.o.Spec.PKIDir, r.o.Now()); err != nil {
		return err
	}
	r.log.printf("client %s: %s, serial %s", cp.Client.Name, joinWords(did), pki.ShortSerial(serial))
	return nil
}

func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
