package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// RecoverRefusedError is --recover on a cluster that has a quorum: the
// plain rotation is the right command there, and it restarts nothing.
type RecoverRefusedError struct{ Quorum string }

func (e *RecoverRefusedError) Error() string {
	return fmt.Sprintf("--recover: the cluster has a quorum (%s): --recover restarts every member at once and is only for a cluster that cannot form one; "+
		"run etcdpki rotate without --recover: it renews expired certificates on a running cluster without restarting anything", e.Quorum)
}

// ExitCode is 2: the wrong command for this cluster, nothing changed.
func (e *RecoverRefusedError) ExitCode() int { return input.ExitCode }

// RecoverUselessError is --recover on a cluster without a quorum whose
// certificates are all valid: new certificates would not bring it back.
type RecoverUselessError struct{}

func (e *RecoverUselessError) Error() string {
	return "--recover: the cluster has no quorum, but no certificate has expired or is invalid and none awaits a restart: " +
		"recovering certificates would not bring it back; the members' logs say why they cannot form a quorum"
}

// ExitCode is 1: a failed check, nothing changed.
func (e *RecoverUselessError) ExitCode() int { return 1 }

// recoverPlan is what a recovery does.
type recoverPlan struct {
	// inv is the spec expanded once: every certificate and bundle.
	inv       *pki.Inventory
	caExpired time.Time
	renew     []pki.Target
	reasons   map[string]string
	// pending are certificates renewed by an earlier recovery that
	// stopped before its restarts: their files differ from the journal.
	pending []string
	deploy  map[string]string // node name -> rendered deploy command
	restart map[string]string // node name -> rendered restart command
	clients []*runner.ClientPlan
}

// recover brings back a cluster that is down because its certificates (or
// its CA) expired: members restarted after expiry cannot reach one
// another, so there is no quorum and no rolling order. It renews what is
// expired or invalid (everything, from a new CA, when the CA expired),
// deploys to every node, runs every member's restart at once, waits for a
// quorum and full health with every member serving its new serials, then
// deploys to and restarts the clients. It never touches a data directory
// and never adds or removes a member.
func (r *leafRun) recover(ctx context.Context, res *Result) error {
	s := r.Inv.Spec
	now := r.o.Now()
	rp, err := r.planRecover(now)
	if err != nil {
		return err
	}
	if err := r.refuseRecover(ctx, rp); err != nil {
		return err
	}
	if r.o.DryRun {
		var b strings.Builder
		rp.print(&b, s)
		r.Log.Report(runner.Event{Step: runner.StepPlan, Outcome: runner.OutcomeDryRun, Message: b.String()})
		return nil
	}
	r.Log.Step(stepRecover, "").Info("recovering: no quorum answers, and %s", rp.summary())
	// Journal first: the serials on disk now are what the members ran
	// with, so a recovery killed after renewing leaves a difference for
	// the next one to restart, rather than new serials that look in
	// effect.
	for _, t := range rp.inv.Targets {
		if _, known := r.Journal.InEffect[t.ID]; known {
			continue
		}
		if serial, err := runner.DiskSerial(t); err == nil {
			r.Journal.InEffect[t.ID] = serial
		}
	}
	if err := r.Journal.Save(s.PKIDir, now); err != nil {
		return err
	}
	if !rp.caExpired.IsZero() || len(rp.renew) > 0 {
		out, err := issue.Reissue(context.WithoutCancel(ctx), r.Inv, issue.Options{Out: r.Log, Now: r.o.Now, LockHeld: true})
		if err != nil {
			return fmt.Errorf("recover: %w", err)
		}
		res.Renewed = out.Renewed
		r.Log.Step(runner.StepRenew, "").Done("renewed %d certificates; previous files in %s", len(out.Renewed), runner.BackupDir(s.PKIDir, out.Renewed))
	}
	if err := ctx.Err(); err != nil {
		return &runner.InterruptedError{Step: "deploying"}
	}
	if err := r.recoverMembersAndClients(context.WithoutCancel(ctx), rp, res); err != nil {
		return err
	}
	what := "its certificates expired"
	if !rp.caExpired.IsZero() {
		what = "its CA expired"
	}
	took := time.Since(r.Log.Start)
	r.Log.Step(stepDone, "").Took(took).Done("recovered: the cluster was down because %s and is healthy again: %d certificates renewed, %d members restarted at once, every member serving its new certificates, in %s",
		what, len(res.Renewed), len(res.Members), runner.Round(took))
	return nil
}

// refuseRecover refuses a recovery that is not needed: only a cluster
// that cannot form a quorum is recovered (with one, a plain rotate renews
// on the running cluster without restarting anything; with an expired CA
// no member accepts any new handshake, so there is nothing to probe), and
// only when something is to be renewed or restarted.
func (r *leafRun) refuseRecover(ctx context.Context, rp *recoverPlan) error {
	s := r.Inv.Spec
	if rp.caExpired.IsZero() {
		h, err := r.Etcd.Health(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if h.Quorum {
			var up []string
			for i, e := range h.Endpoints {
				if e.Healthy && i < len(s.Nodes) {
					up = append(up, s.Nodes[i].Name)
				}
			}
			return &RecoverRefusedError{Quorum: fmt.Sprintf("%d of %d members answer a linearizable read: %s", len(up), len(s.Nodes), strings.Join(up, ", "))}
		}
	}
	if rp.caExpired.IsZero() && len(rp.renew) == 0 && len(rp.pending) == 0 {
		return &RecoverUselessError{}
	}
	return nil
}

// recoverMembersAndClients deploys every node's bundle, restarts every
// member at once, then the clients: a new CA changes their CA file too,
// which they read only at start.
func (r *leafRun) recoverMembersAndClients(ctx context.Context, rp *recoverPlan, res *Result) error {
	for _, n := range r.Inv.Spec.Nodes {
		if cmd := rp.deploy[n.Name]; cmd != "" {
			t0 := time.Now()
			if err := runner.RunCommand(ctx, "deploy to node "+n.Name, cmd, r.o.CommandTimeout); err != nil {
				return &runner.MemberError{Member: n.Name, Err: err}
			}
			took := time.Since(t0)
			r.Log.Step(runner.StepDeploy, n.Name).Took(took).Done("%s: deployed in %s", n.Name, runner.Round(took))
		}
	}
	if err := r.restartAll(ctx, rp, res); err != nil {
		return err
	}
	for _, cp := range rp.clients {
		if err := r.UpdateClient(ctx, cp, true, true); err != nil {
			return err
		}
	}
	return nil
}

// planRecover works out the recovery without writing.
func (r *leafRun) planRecover(now time.Time) (*recoverPlan, error) {
	s := r.Inv.Spec
	caExpired, renew, reasons, err := issue.ReissueNeeds(r.Inv, now)
	if err != nil {
		return nil, err
	}
	rp := &recoverPlan{inv: r.Inv, caExpired: caExpired, renew: renew, reasons: reasons, deploy: map[string]string{}, restart: map[string]string{}}
	for _, t := range rp.inv.Targets {
		serial, err := runner.DiskSerial(t)
		if prev, known := r.Journal.InEffect[t.ID]; err == nil && known && prev != serial && reasons[t.ID] == "" {
			rp.pending = append(rp.pending, t.ID)
		}
	}
	paths := rp.inv.Paths
	for _, n := range s.Nodes {
		if rp.deploy[n.Name], rp.restart[n.Name], err = runner.NodeCommands(paths, n); err != nil {
			return nil, err
		}
		if rp.restart[n.Name] == "" {
			return nil, input.Errorf("node %s: --recover restarts every member, but the spec has no restart command for it (set nodes[].restart)", n.Name)
		}
		if !s.Local && rp.deploy[n.Name] == "" {
			return nil, input.Errorf("node %s: --recover deploys to every node, but the spec has no deploy command to copy its files to %s (set nodes[].deploy)", n.Name, n.Dir)
		}
	}
	// Every client whose certificate or CA changes: with a new CA, each
	// one's --etcd-cafile changes, which it reads only at start.
	for _, t := range rp.inv.Targets {
		c, ok := s.Client(t.Owner)
		if !ok || reasons[t.ID] == "" && !slices.Contains(rp.pending, t.ID) {
			continue
		}
		cp := &runner.ClientPlan{Client: c, Target: t}
		if cp.DeployCmd, cp.RestartCmd, err = runner.ClientCommands(c, t.Dir); err != nil {
			return nil, err
		}
		rp.clients = append(rp.clients, cp)
	}
	return rp, nil
}

func (rp *recoverPlan) summary() string {
	var parts []string
	if !rp.caExpired.IsZero() {
		parts = append(parts, fmt.Sprintf("the CA expired at %s: a new CA replaces it and every certificate is re-issued from it", rp.caExpired.UTC().Format(time.RFC3339)))
	} else if len(rp.renew) > 0 {
		parts = append(parts, fmt.Sprintf("%d certificates are expired or invalid: %s", len(rp.renew), strings.Join(pki.IDs(rp.renew), ", ")))
	}
	if len(rp.pending) > 0 {
		parts = append(parts, fmt.Sprintf("%d renewed certificates await a restart: %s", len(rp.pending), strings.Join(rp.pending, ", ")))
	}
	return strings.Join(parts, "; ")
}

// print writes the recovery plan for --recover --dry-run.
func (rp *recoverPlan) print(w io.Writer, s *cluster.Spec) {
	fmt.Fprintln(w, "recovery (--recover): the cluster has no quorum with the current certificates")
	if !rp.caExpired.IsZero() {
		fmt.Fprintf(w, "CA: expired at %s; a new CA (%s, valid %s) replaces it; the old one goes to the backup\n",
			rp.caExpired.UTC().Format(time.RFC3339), s.CA.CommonName, cluster.FormatDuration(s.CA.Validity))
	}
	fmt.Fprintln(w, "certificates to renew:")
	if len(rp.renew) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, t := range rp.renew {
		fmt.Fprintf(w, "  %-36s %s\n", t.ID, rp.reasons[t.ID])
	}
	if len(rp.pending) > 0 {
		fmt.Fprintf(w, "renewed by an earlier run, to put into effect: %s\n", strings.Join(rp.pending, ", "))
	}
	fmt.Fprintln(w, "then, on every node (data directories and membership untouched):")
	for _, n := range s.Nodes {
		fmt.Fprintf(w, "  %s\n", n.Name)
		if rp.deploy[n.Name] != "" {
			fmt.Fprintf(w, "    deploy:  %s\n", rp.deploy[n.Name])
		}
		fmt.Fprintf(w, "    restart: %s\n", rp.restart[n.Name])
	}
	fmt.Fprintln(w, "restarts: every member at once (no quorum, so no rolling order exists); then wait for a quorum and full health,")
	fmt.Fprintln(w, "  with every member serving its new serials on its client and peer ports")
	if len(rp.clients) == 0 {
		return
	}
	fmt.Fprintln(w, "then the clients:")
	for _, cp := range rp.clients {
		fmt.Fprintf(w, "  client %s: %s\n", cp.Client.Name, cp.Target.ID)
		if cp.DeployCmd != "" {
			fmt.Fprintf(w, "    deploy:  %s\n", cp.DeployCmd)
		}
		if cp.RestartCmd != "" {
			fmt.Fprintf(w, "    restart: %s\n", cp.RestartCmd)
		}
	}
}

// restartAll runs every member's restart command at once, then waits
// until every member serves its new serials on both ports, is healthy
// and has caught up, and records what each now runs with.
func (r *leafRun) restartAll(ctx context.Context, rp *recoverPlan, res *Result) error {
	s := r.Inv.Spec
	type want struct{ server, peer string }
	wants := map[string]want{}
	all := map[string]map[string]string{}
	for _, n := range s.Nodes {
		serials, server, peer, err := runner.ServingSerials(runner.NodeTargets(rp.inv.Targets, n.Name))
		if err != nil {
			return err
		}
		wants[n.Name] = want{server, peer}
		all[n.Name] = serials
	}
	t0 := time.Now()
	errs := make([]error, len(s.Nodes))
	var wg sync.WaitGroup
	for i, n := range s.Nodes {
		wg.Go(func() {
			if err := runner.RunCommand(ctx, "restart node "+n.Name, rp.restart[n.Name], r.o.CommandTimeout); err != nil {
				errs[i] = &runner.MemberError{Member: n.Name, Err: err}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.Log.Step(runner.StepRestart, "").Took(time.Since(t0)).Info("restarted every member at once (%d) in %s; waiting for a quorum", len(s.Nodes), runner.Round(time.Since(t0)))
	took := make([]time.Duration, len(s.Nodes))
	for i, n := range s.Nodes {
		wg.Go(func() {
			w := wants[n.Name]
			if err := r.Etcd.WaitServing(ctx, n, w.server, w.peer, r.o.MemberTimeout); err != nil {
				errs[i] = &runner.MemberError{Member: n.Name, Err: err}
			}
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	paths := rp.inv.Paths
	for i, n := range s.Nodes {
		for id, serial := range all[n.Name] {
			r.Journal.InEffect[id] = serial
		}
		if started, ok, err := runner.StartedNow(paths, n); err != nil {
			return err
		} else if ok {
			r.Journal.Started[n.Name] = started
		}
		w := wants[n.Name]
		res.Members = append(res.Members, runner.MemberResult{Name: n.Name, Restart: took[i], ServerSerial: w.server, PeerSerial: w.peer})
	}
	// Journal first, then the lines: a run killed after printing them
	// never restarts these members again.
	if err := r.Journal.Save(s.PKIDir, r.o.Now()); err != nil {
		return err
	}
	for i, n := range s.Nodes {
		w := wants[n.Name]
		r.Log.Step(runner.StepRestart, n.Name).Count(i+1, len(s.Nodes)).Serial(w.server).Took(took[i]).Done("[%d/%d] %s: restarted, healthy and caught up in %s: client port serves %s, peer port serves %s",
			i+1, len(s.Nodes), n.Name, runner.Round(took[i]), pki.ShortSerial(w.server), pki.ShortSerial(w.peer))
	}
	return nil
}
