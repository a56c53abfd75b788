package member

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Remove steps, in order.
const (
	stepRMAPIServer = "apiserver"
	stepLeader      = "leader"
	stepRemove      = "remove"
	stepRevoke      = "revoke"
	stepCleanup     = "cleanup"
)

// Remove removes o.Name, no longer in the spec, from the running
// cluster: the apiserver first, leadership away from it, MemberRemove,
// its certificates revoked and proven refused, its bundle archived.
func Remove(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	m, err := newMemberRun(inv, &o, "member remove")
	if err != nil {
		return nil, err
	}
	if _, ok := inv.Spec.Node(o.Name); ok {
		where := "the spec " + inv.Spec.File
		return nil, input.Errorf("member remove %s: %s still names it: delete it there first", o.Name, where)
	}
	res, took, err := runner.Locked(m.Runner, func(res *Result) error { return m.remove(ctx, res) })
	if res != nil {
		res.Took = took
	}
	return res, err
}

func (m *memberRun) remove(ctx context.Context, res *Result) error {
	name := m.mo.Name
	j, resumed, err := m.journal(&runner.MemberJournal{Op: "remove", Name: name, Step: stepRMAPIServer, Started: m.Cfg.Now().UTC()})
	if err != nil {
		return err
	}
	// Probes, the hand-off and the proof of refusal look at the members
	// only: spec nodes yet to be added are no part of this change.
	members, err := m.Etcd.MemberedSpec(ctx, "", name)
	if err != nil {
		return err
	}
	// The members' inventory, derived once from the one cmd built: the
	// revoke's CRL goes to the members' bundles and is proven on their
	// ports.
	membersInv := m.Inv.Without(notIn(m.Inv.Spec, members)...)
	m.Etcd = m.Etcd.For(membersInv.Spec)
	if !resumed {
		done, err := m.preflightRemove(ctx, j)
		if err != nil || done {
			res.Unchanged = done
			return err
		}
		if err := m.save(j); err != nil {
			return err
		}
		if !m.mo.DryRun {
			m.Log.Step(stepBegin, name).Info("removing member %s (%s); journal %s", name, j.ID, runner.StatePath(m.Inv.Spec.PKIDir))
		}
	}
	steps := []memberStep{
		{stepRMAPIServer, "regenerate apiserver/etcd-flags and the remaining configs without " + name + "; run the kube-apiserver client's deploy and restart templates", func(ctx context.Context, _ *runner.MemberJournal, _ *Result) error {
			o := issue.Options{Now: m.Cfg.Now, LockHeld: true, APIServerEndpoints: m.Etcd.Endpoints(), SpecYAML: m.mo.SpecYAML}
			if _, err := issue.Init(ctx, m.Inv, o); err != nil {
				return err
			}
			return m.updateAPIServer(ctx)
		}},
		{stepLeader, "if " + name + " leads, move leadership to a caught-up member", func(ctx context.Context, j *runner.MemberJournal, res *Result) error {
			return m.moveAway(ctx, j, res)
		}},
		{stepRemove, "etcd member remove " + j.ID + " (the removed etcd stops by itself)", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			if j.ID == "" {
				return nil
			}
			if err := m.Etcd.RemoveMember(ctx, parseID(j.ID)); err != nil {
				return err
			}
			m.Log.Step(stepRemove, name).Done("[remove] member %s (%s) removed", name, j.ID)
			return m.removeUser(ctx, name)
		}},
		{stepRevoke, "revoke " + name + "'s certificates (serials " + strings.Join(j.Serials, ", ") + ") and prove every remaining member refuses them on their client and peer ports", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			if len(j.Serials) == 0 {
				return nil
			}
			ro := runner.RevokeRequest{Serials: j.Serials, Reason: "cessationOfOperation"}
			if err := ro.Check(); err != nil {
				return err
			}
			// The revoke runs on the members' inventory, through the
			// same lock, journal and members' client.
			onMembers := *m.Runner
			onMembers.Inv = membersInv
			return onMembers.Revoke(ctx, ro, &runner.RevokeResult{})
		}},
		{stepCleanup, "move " + name + "'s bundle to " + m.Inv.Paths.Backups() + " (verified), forget it, regenerate the remaining configs", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			return m.cleanup(ctx, name)
		}},
	}
	if err := m.steps(ctx, j, steps, res); err != nil {
		return err
	}
	res.ID = parseID(j.ID)
	if !m.mo.DryRun {
		m.Log.Step(stepDone, name).Done("member %s removed, its certificates revoked", name)
	}
	return nil
}

// preflightRemove refuses a removal that would leave no quorum of healthy
// voting members. A dead NAME is fine: that is the failed-host case.
func (m *memberRun) preflightRemove(ctx context.Context, j *runner.MemberJournal) (done bool, err error) {
	name := m.mo.Name
	ms, err := m.Etcd.LocalMemberList(ctx)
	if err != nil {
		return false, err
	}
	mb := runner.MemberByName(ms, name)
	paths := m.Inv.Paths
	// NAME is no longer in the spec, so its pairs are found where its
	// bundle held them: every one of them, the healthcheck client's too
	// (its key stays on the removed host), and what else was issued to it.
	if j.Serials, err = removedSerials(paths, m.Inv.Spec, name, m.Cfg.Now()); err != nil {
		return false, err
	}
	if mb == nil {
		if len(j.Serials) == 0 {
			m.Log.Step(stepBegin, name).Skipped("%s is neither a member of the cluster nor has a bundle in %s: nothing to do", name, paths.NodeDir(name))
			return true, nil
		}
		m.Log.Step(stepBegin, name).Info("%s is not a member of the cluster; its certificates are still to be revoked and its bundle archived", name)
		j.Step = stepRevoke
		return false, nil
	}
	j.ID = hexID(mb.ID)
	if len(mb.ClientURLs) > 0 {
		j.ClientURL = mb.ClientURLs[0]
	}
	cfg, err := m.Etcd.TLS()
	if err != nil {
		return false, err
	}
	var urls []string
	voters := 0
	for _, o := range ms {
		if o.ID == mb.ID || o.IsLearner {
			continue
		}
		voters++
		urls = append(urls, o.ClientURLs...)
	}
	h := probe.Health(ctx, urls, cfg, runner.ProbeTimeout)
	healthy := 0
	var bad []string
	for _, r := range h.Endpoints {
		if r.Healthy {
			healthy++
		} else {
			bad = append(bad, fmt.Sprintf("%s: %v", r.Endpoint, r.Err()))
		}
	}
	if need := voters/2 + 1; healthy < need {
		return false, &runner.UnhealthyError{When: "refusing to remove " + name, Members: bad,
			Reason: fmt.Sprintf("after the removal %d voting members would remain with %d healthy; quorum needs %d, so the cluster would stop serving", voters, healthy, need)}
	}
	if l, ok := h.LeaderResult(); ok {
		j.Term = l.Status.RaftTerm
	}
	return false, nil
}

// moveAway hands leadership from the member being removed to the most
// caught-up remaining member: one leader change, at a moment of our
// choosing, instead of an election after MemberRemove.
func (m *memberRun) moveAway(ctx context.Context, j *runner.MemberJournal, res *Result) error {
	if j.ID == "" || j.ClientURL == "" {
		return nil
	}
	cfg, err := m.Etcd.TLS()
	if err != nil {
		return err
	}
	all := append(m.Etcd.Endpoints(), j.ClientURL)
	h := probe.Health(ctx, all, cfg, runner.ProbeTimeout)
	if h.Leader != probe.ID(parseID(j.ID)) {
		return nil
	}
	var to probe.ID
	var best uint64
	for _, r := range h.Endpoints[:len(all)-1] {
		if r.Healthy && r.Status != nil && r.Status.RaftAppliedIndex >= best {
			to, best = r.Status.MemberID, r.Status.RaftAppliedIndex
		}
	}
	if to == 0 {
		return fmt.Errorf("no healthy remaining member to hand leadership to")
	}
	t0 := time.Now()
	if err := m.Etcd.MoveLeader(ctx, j.ClientURL, to); err != nil {
		return err
	}
	if err := m.Etcd.WaitLeader(ctx, to, m.mo.MemberTimeout); err != nil {
		return err
	}
	res.HandOff = &runner.HandOff{From: m.mo.Name, To: to.String(), Start: t0, Took: time.Since(t0)}
	// As in a rolling restart: the new leader is left alone for a moment
	// before the old one goes.
	if m.Cfg.HandOffSettle > 0 {
		time.Sleep(m.Cfg.HandOffSettle)
	}
	m.Log.Step(stepLeader, m.mo.Name).Took(res.HandOff.Took).Done("[leader] %s led: leadership moved to member %s in %s (settled %s)", m.mo.Name, to, runner.Round(res.HandOff.Took), m.Cfg.HandOffSettle)
	return nil
}

// cleanup archives the bundle and forgets the member in the journal and
// in the record of the bootstrap members.
func (m *memberRun) cleanup(ctx context.Context, name string) error {
	paths := m.Inv.Paths
	dir, err := issue.ArchiveBundle(paths, name, m.Cfg.Now())
	if err != nil {
		return err
	}
	// The remaining configs once more (a run that started at the
	// revocation, for a member already gone, wrote none yet); nothing
	// restarts for them.
	o := issue.Options{Now: m.Cfg.Now, LockHeld: true, APIServerEndpoints: m.Etcd.Endpoints(), SpecYAML: m.mo.SpecYAML}
	if _, err := issue.Init(ctx, m.Inv, o); err != nil {
		return err
	}
	if err := issue.ForgetMember(paths, name); err != nil {
		return err
	}
	delete(m.Journal.Started, name)
	delete(m.Journal.Proofs, name)
	for id := range m.Journal.InEffect {
		if strings.HasPrefix(id, name+"/") {
			delete(m.Journal.InEffect, id)
		}
	}
	if dir != "" {
		m.Log.Step(stepCleanup, name).Done("[cleanup] %s's bundle moved to %s (verified)", name, dir)
	}
	return nil
}

// notIn names the nodes of s that members lacks.
func notIn(s, members *cluster.Spec) []string {
	var out []string
	for _, n := range s.Nodes {
		if _, ok := members.Node(n.Name); !ok {
			out = append(out, n.Name)
		}
	}
	return out
}
