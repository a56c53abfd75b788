// Package rotate renews the etcd certificates that are due and puts them
// into effect without losing quorum: plan (what is due, which members
// need a restart, in which order), renew (atomic pair swaps, old pairs
// kept in PKI/backup), deploy (per-node command templates), then, per
// member, either a proof or a restart.
//
// etcd (3.2 and later) reads its certificate and key files at every new
// TLS handshake and an established connection is never verified again, so
// a renewed leaf needs no restart: in the default mode (RestartAuto) fresh
// handshakes prove it in effect instead (see prove.go), and no leader
// changes. Only what etcd reads once at start (its CA bundle, its
// etcd.conf.yml) or an explicit --restart=always makes a member restart.
// Restarts are rolled, gated on health — followers first, the leader
// last; as soon as the first member is back with its new certificate the
// leader hands leadership to it (MoveLeader, while the old leader still
// fully serves), so the old leader goes down as a plain follower and the
// cluster sees exactly one leader change (a leader that is the only member
// to restart hands off to a member not restarted, just before its own
// turn). Each member must serve its new certificate on both ports, answer
// a linearizable read and have caught up before the next one goes.
//
// Expired certificates (see expired.go and recover.go): probes present a
// client certificate minted in memory from the CA and accept an expired
// server certificate from it (each one a warning), so a cluster still
// serving on connections opened before expiry is rotated like any other,
// without restarts, and the run ends proving every port serves an
// unexpired certificate. A cluster with no quorum because its
// certificates (or CA) expired is refused with the command to run:
// Options.Recover renews (a new CA when it expired) and restarts every
// member at once.
//
// A run is safe from cron: an flock keeps two runs apart, and a journal
// in the PKI directory (see State) lets a run killed at any point resume
// without redoing finished members. Watch keeps running, rotating on a
// timer and whenever certificate files or the spec change.
package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/issue"
)

// RestartMode says whether members are restarted after their files change.
type RestartMode string

// Restart modes.
const (
	// RestartAuto, the default, restarts a member only when something
	// etcd reads only at start changed (the bytes of ca.crt in its
	// bundle, its etcd.conf.yml) or it runs an etcd older than 3.2;
	// renewed leaves are proven in effect by fresh handshakes instead.
	RestartAuto RestartMode = "auto"
	// RestartAlways rolls every member whose certificates changed. It is
	// the choice after a key compromise: connections already open, which
	// were authenticated with the old key, are only cut by a restart.
	RestartAlways RestartMode = "always"
	// RestartNever restarts nothing and proves the renewed leaves in
	// effect (with NoVerify, it swaps the files only).
	RestartNever RestartMode = "never"
)

// Defaults for the timeouts, chosen for a real host rather than a laptop.
const (
	// DefaultMemberTimeout bounds the wait for a restarted member: etcd
	// may replay a large WAL, but two minutes without serving means
	// something is wrong, and the other members must stay untouched.
	DefaultMemberTimeout = 2 * time.Minute
	// DefaultHandOffSettle is the pause between a leadership transfer
	// and stopping the next member. Measured on loopback under client
	// load: stopping a member right after the transfer stalled client
	// requests for 150-750 ms in most runs (the new leader's commits
	// waited on something etcd does not expose); 300 ms still showed
	// 130-230 ms stalls, 500 ms none above 15 ms. Against real restarts
	// of several seconds each, half a second is noise.
	DefaultHandOffSettle = 500 * time.Millisecond
	// DefaultCommandTimeout bounds one deploy or restart command: an ssh
	// to a host that went away must not hold the lock forever.
	DefaultCommandTimeout = 5 * time.Minute
)

// Options control a rotation. The zero value of every field but Spec is
// a sensible default.
type Options struct {
	Spec *cluster.Spec
	// RenewBefore overrides the spec's renew-before threshold when > 0.
	RenewBefore time.Duration
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Restart is RestartAuto ("" means auto), RestartAlways or
	// RestartNever.
	Restart RestartMode
	// NoVerify skips the proof that renewed certificates are in effect,
	// for hosts the rotating machine cannot reach. Only with RestartNever:
	// the other modes must see the new certificates served.
	NoVerify bool
	// Out receives the timestamped progress lines.
	Out io.Writer
	// MetricsFile, when set, is a Prometheus textfile written after
	// every run.
	MetricsFile string
	// HandOffSettle is how long to leave a new leader alone before the
	// next member goes down; 0 means DefaultHandOffSettle, < 0 none.
	HandOffSettle time.Duration
	// MemberTimeout and CommandTimeout; 0 means the defaults.
	MemberTimeout  time.Duration
	CommandTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Recover is --recover: for a cluster whose certificates (or CA)
	// expired and that has no quorum. It renews what is expired or
	// invalid (re-issuing everything from a new CA when the CA expired),
	// deploys to every node and restarts every member at once (see
	// recover.go). It refuses a cluster that has a quorum.
	Recover bool
	// RecoverCommand is the exact command line an operator runs to
	// recover this cluster, quoted in the error that sends them there;
	// "" means "etcdpki rotate --recover".
	RecoverCommand string
}

func (o *Options) defaults() error {
	if o.Spec == nil {
		return &ca.InputError{Err: errors.New("rotate: no cluster spec")}
	}
	switch o.Restart {
	case "":
		o.Restart = RestartAuto
	case RestartAuto, RestartAlways, RestartNever:
	default:
		return &ca.InputError{Err: fmt.Errorf("--restart %q: use auto, always or never", o.Restart)}
	}
	if o.Recover && o.Restart != RestartAuto {
		return &ca.InputError{Err: fmt.Errorf("--recover restarts every member at once: --restart=%s does not apply to it", o.Restart)}
	}
	if o.RecoverCommand == "" {
		o.RecoverCommand = "etcdpki rotate --recover"
	}
	if o.NoVerify && o.Restart != RestartNever {
		return &ca.InputError{Err: fmt.Errorf("--no-verify only goes with --restart=never: --restart=%s must see the new certificates in effect", o.Restart)}
	}
	if o.MemberTimeout <= 0 {
		o.MemberTimeout = DefaultMemberTimeout
	}
	if o.HandOffSettle == 0 {
		o.HandOffSettle = DefaultHandOffSettle
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// Result says what a run did and how long each part took.
type Result struct {
	Plan    *Plan
	Renewed []issue.Renewed
	// Members are the restarted members, in order.
	Members []MemberResult
	// Proofs are the members whose renewed certificates were proven in
	// effect without a restart, in order.
	Proofs []ProofResult
	// HandOffs are the leadership transfers the run made.
	HandOffs []HandOff
	// Took is the whole run.
	Took time.Duration
}

// MemberResult is one restarted member.
type MemberResult struct {
	Name string
	// Restart is from running its restart command until it passed every
	// health gate: the floor a rotation cannot beat.
	Restart      time.Duration
	ServerSerial string
	PeerSerial   string
}

// HandOff is one leadership transfer: MoveLeader, the wait until every
// member follows the new leader, and the settle time after it.
type HandOff struct {
	From, To string
	Start    time.Time
	// Took runs from MoveLeader until every member follows the new
	// leader; it excludes the settle pause that follows.
	Took time.Duration
}

// Floor is the sum of the members' restart-to-healthy times.
func (r *Result) Floor() time.Duration {
	var d time.Duration
	for _, m := range r.Members {
		d += m.Restart
	}
	return d
}

// InterruptedError is a run stopped by its context (SIGTERM) between two
// steps. Nothing is half done: the next run resumes.
type InterruptedError struct{ Step string }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before %s; the next run resumes from the journal", e.Step)
}

// ExitCode is 1: the rotation did not finish.
func (e *InterruptedError) ExitCode() int { return 1 }

// MemberError is a member that did not come back as it should.
type MemberError struct {
	Member string
	Err    error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("member %s: %v; stopped, the other members are untouched", e.Member, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// ExitCode is 1: a failed operation.
func (e *MemberError) ExitCode() int { return 1 }

// Run does one rotation: plan, renew, deploy, proofs and restarts, clients.
// Cancelling ctx stops it at the next step boundary (a member being
// restarted is still waited for), so SIGTERM never leaves a member half
// rolled.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &runner{o: o, log: newLogger(o.Out), etcd: &etcdCluster{spec: o.Spec, paths: issue.Paths{PKI: o.Spec.PKIDir}}}
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
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	start := time.Now()
	s := r.o.Spec
	res := &Result{}
	if !r.o.DryRun {
		l, err := acquire(s.PKIDir)
		if err != nil {
			return nil, err
		}
		defer l.release()
	}
	st, err := LoadState(s.PKIDir)
	if err != nil {
		return nil, err
	}
	r.st = st
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
	if r.o.DryRun {
		return res, err
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
			r.log.printf("nothing due: %s", nextExpiry(p.Certs, now))
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
	var due, missing []issue.Target
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
		r.log.printf("issued %d missing certificates: %s", len(missing), strings.Join(issue.IDs(missing), ", "))
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
	for _, np := range p.Nodes {
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
func (r *runner) inEffect(ts []issue.Target) error {
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
func diskSerials(ts []issue.Target) (map[string]string, error) {
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

func diskSerial(t issue.Target) (string, error) {
	c, err := readCert(t.CertPath())
	if err != nil {
		return "", fmt.Errorf("certificate %s: %w", t.ID, err)
	}
	return issue.Serial(c), nil
}

func targetOf(ts []issue.Target, kind string) (issue.Target, bool) {
	for _, t := range ts {
		if t.Kind.Name == kind {
			return t, true
		}
	}
	return issue.Target{}, false
}

// roll restarts the planned members one at a time.
func (r *runner) roll(ctx context.Context, p *Plan, res *Result) error {
	s := r.o.Spec
	var rotated []string
	for i, name := range p.Order {
		np := p.node(name)
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "restarting " + name}
		}
		bg := context.WithoutCancel(ctx)
		// Every restart starts from a healthy cluster: a member that fell
		// over since the last step must not be joined by a second one.
		h, err := r.etcd.health(bg)
		if err != nil {
			return err
		}
		if err := healthyOrError(s, h, "refusing to restart "+name); err != nil {
			return err
		}
		mr := MemberResult{Name: name}
		// Leadership goes to a rotated member as soon as there is one
		// (after the first restart), not just before the leader's own
		// turn: the settle time after the transfer then precedes a
		// follower's restart, and the old leader is restarted last as a
		// plain follower. Only when the leader is the first or only
		// member to restart does it hand off to a member not rotated.
		leader := memberName(s, h, h.Leader)
		if leader == name || len(rotated) > 0 && slices.Contains(p.Order[i+1:], leader) {
			if err := r.handOff(bg, h, leader, rotated, res); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return &InterruptedError{Step: "restarting " + name}
			}
		}
		// The serials are read once, before the restart: the member is
		// verified to serve these, and these are what the journal
		// records, even if the files change again meanwhile.
		serials, err := diskSerials(np.All)
		if err != nil {
			return err
		}
		started, _, err := startedNow(r.etcd.paths, np.Node)
		if err != nil {
			return err
		}
		serverT, _ := targetOf(np.All, ca.KindServer.Name)
		peerT, _ := targetOf(np.All, ca.KindPeer.Name)
		wantServer, wantPeer := serials[serverT.ID], serials[peerT.ID]
		t0 := time.Now()
		if err := runCommand(bg, "restart node "+name, np.RestartCmd, r.o.CommandTimeout); err != nil {
			return &MemberError{Member: name, Err: err}
		}
		if err := r.etcd.waitServing(bg, np.Node, wantServer, wantPeer, r.o.MemberTimeout); err != nil {
			return &MemberError{Member: name, Err: err}
		}
		mr.Restart = time.Since(t0)
		mr.ServerSerial, mr.PeerSerial = wantServer, wantPeer
		// Journal first, then the line: a run killed after printing it
		// never restarts this member again.
		for _, t := range np.Targets {
			r.st.InEffect[t.ID] = serials[t.ID]
		}
		r.st.Started[name] = started
		if err := r.st.save(s.PKIDir, r.o.Now()); err != nil {
			return err
		}
		res.Members = append(res.Members, mr)
		rotated = append(rotated, name)
		r.log.printf("[%d/%d] %s: restarted (%s), serving serial %s, caught up in %s", i+1, len(p.Order), name, strings.Join(np.Reasons, ", "), short(wantServer), round(mr.Restart))
	}
	return nil
}

// handOff moves leadership away from leader to a healthy member,
// preferably one already rotated.
func (r *runner) handOff(ctx context.Context, h *probe.Cluster, leader string, rotated []string, res *Result) error {
	s := r.o.Spec
	to, toName := transferee(s, h, leader, rotated)
	if to == 0 {
		return &MemberError{Member: leader, Err: errors.New("leads and no other healthy, caught-up member can take over")}
	}
	n, _ := s.Node(leader)
	t0 := time.Now()
	if err := r.etcd.moveLeader(ctx, n.ClientURLs[0], to); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Measured on loopback under load: stopping the old leader as soon as
	// MoveLeader returned stalled clients for 0.5-0.75 s in most runs;
	// waiting until every member follows the new leader and it has
	// committed in its own term made the stalls rarer and shorter.
	if err := r.etcd.waitLeader(ctx, to, r.o.MemberTimeout); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Took ends here: leadership has moved. The settle pause below is not
	// part of the hand-off.
	ho := HandOff{From: leader, To: toName, Start: t0, Took: time.Since(t0)}
	if r.o.HandOffSettle > 0 {
		time.Sleep(r.o.HandOffSettle)
	}
	res.HandOffs = append(res.HandOffs, ho)
	r.log.printf("%s: leader; handed leadership to %s in %s (settled %s)", leader, toName, round(ho.Took), r.o.HandOffSettle)
	return nil
}

// transferee picks who takes over from leader: preferably a member
// already restarted in this run (it will not go down again), else any
// healthy member, the most caught up first.
func transferee(s *cluster.Spec, h *probe.Cluster, leader string, rotated []string) (probe.ID, string) {
	var best probe.ID
	bestName := ""
	var bestIdx uint64
	bestRotated := false
	for i, e := range h.Endpoints {
		if i >= len(s.Nodes) || !e.Healthy || e.Status == nil || s.Nodes[i].Name == leader || e.Status.IsLearner {
			continue
		}
		isRotated := slices.Contains(rotated, s.Nodes[i].Name)
		better := best == 0 ||
			isRotated && !bestRotated ||
			isRotated == bestRotated && e.Status.RaftAppliedIndex > bestIdx
		if better {
			best, bestName, bestIdx, bestRotated = e.Status.MemberID, s.Nodes[i].Name, e.Status.RaftAppliedIndex, isRotated
		}
	}
	return best, bestName
}

// clients deploys and restarts clients whose certificate changed.
func (r *runner) clients(ctx context.Context, p *Plan) error {
	for _, cp := range p.Clients {
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "updating client " + cp.Client.Name}
		}
		bg := context.WithoutCancel(ctx)
		did := []string{}
		if cp.DeployCmd != "" {
			if err := runCommand(bg, "deploy to client "+cp.Client.Name, cp.DeployCmd, r.o.CommandTimeout); err != nil {
				return err
			}
			did = append(did, "deployed")
		}
		if cp.RestartCmd != "" && r.o.Restart == RestartAlways {
			if err := runCommand(bg, "restart client "+cp.Client.Name, cp.RestartCmd, r.o.CommandTimeout); err != nil {
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
		// A client loads a renewed pair at its next handshake too (the
		// apiserver's etcd client is built from the same TLSInfo as etcd);
		// what can be proven from here is that etcd accepts it.
		if r.proving() {
			took, err := r.etcd.proveClient(bg, cp, serial)
			if err != nil {
				return err
			}
			did = append(did, fmt.Sprintf("accepted with a linearizable read on every client port (%d ms)", took.Milliseconds()))
		}
		r.st.InEffect[cp.Target.ID] = serial
		if err := r.st.save(r.o.Spec.PKIDir, r.o.Now()); err != nil {
			return err
		}
		r.log.printf("client %s: %s, serial %s", cp.Client.Name, joinWords(did), short(serial))
	}
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

func short(serial string) string {
	if len(serial) > 12 {
		return serial[:12] + "..."
	}
	return serial
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// logger writes timestamped lines; it is also an io.Writer so that
// issue.Renew's lines get the same stamp.
type logger struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	buf   []byte
}

func newLogger(out io.Writer) *logger {
	return &logger{out: out, start: time.Now()}
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "%s %s\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
}

// Write stamps each complete line.
func (l *logger) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, b...)
	var lines []string
	for {
		i := slices.Index(l.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	l.mu.Unlock()
	for _, line := range lines {
		l.printf("%s", line)
	}
	return len(b), nil
}
