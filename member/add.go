package member

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Add steps, in order.
const (
	stepCerts     = "certs"
	stepLearner   = "learner"
	stepConfig    = "config"
	stepStart     = "start"
	stepPromote   = "promote"
	stepProveNew  = "prove"
	stepAPIServer = "apiserver"
	stepConfigs   = "configs"
	stepAuth      = "auth"
	// stepBegin and stepDone are the events before the first step and
	// after the last (not journal steps).
	stepBegin = "begin"
	stepDone  = "done"
)

// Add adds spec node o.Name to the running cluster: its
// certificates, a learner, its config (joining the member list as etcd
// returns it), deploy and start, catch-up and promotion, the proof, and
// only then the apiserver's --etcd-servers and the other members'
// configs.
func Add(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	m, err := newMemberRun(inv, &o, "member add")
	if err != nil {
		return nil, err
	}
	n, ok := inv.Spec.Node(o.Name)
	if !ok {
		return nil, input.Errorf("member add %s: no such node in the spec (add it under nodes: first)", o.Name)
	}
	res, took, err := runner.Locked(m.Runner, func(res *Result) error { return m.add(ctx, n, res) })
	if res != nil {
		res.Took = took
	}
	return res, err
}

func (m *memberRun) add(ctx context.Context, n cluster.Node, res *Result) error {
	j, resumed, err := m.journal(&runner.MemberJournal{Op: "add", Name: n.Name, PeerURL: n.PeerURLs[0], Step: stepCerts, Started: m.Cfg.Now().UTC()})
	if err != nil {
		return err
	}
	// The members, without the node being added (others), and with it
	// (all): spec nodes not yet members are no part of this change.
	base := m.Etcd.For(withoutNode(m.Inv.Spec, n.Name))
	othersSpec, err := base.MemberedSpec(ctx, "", n.Name)
	if err != nil {
		return err
	}
	others := m.Etcd.For(othersSpec)
	allSpec := *othersSpec
	allSpec.Nodes = nil
	for _, x := range m.Inv.Spec.Nodes {
		if x.Name == n.Name || slices.ContainsFunc(othersSpec.Nodes, func(y cluster.Node) bool { return y.Name == x.Name }) {
			allSpec.Nodes = append(allSpec.Nodes, x)
		}
	}
	all := m.Etcd.For(&allSpec)
	if !resumed {
		done, err := m.preflightAdd(ctx, others, n, j)
		if err != nil || done {
			res.Unchanged = done
			return err
		}
		if err := m.save(j); err != nil {
			return err
		}
		if !m.mo.DryRun {
			m.Log.Step(stepBegin, n.Name).Info("adding member %s (%s); journal %s", n.Name, j.PeerURL, runner.StatePath(m.Inv.Spec.PKIDir))
		}
	}
	steps := []memberStep{
		{stepCerts, "issue " + n.Name + "'s certificates if missing (as init does)", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			return m.writeFiles(ctx, others, n, "")
		}},
		{stepLearner, "etcd member add --learner " + j.PeerURL, func(ctx context.Context, j *runner.MemberJournal, res *Result) error {
			return m.addLearner(ctx, others, j)
		}},
		{stepConfig, "write " + n.Name + "'s etcd.conf.yml and etcd.env: initial-cluster from etcd's member list plus " + n.Name + ", initial-cluster-state existing", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			ic, err := joinCluster(ctx, others, j)
			if err != nil {
				return err
			}
			m.Log.Step(stepConfig, n.Name).Done("[config] %s: initial-cluster %s, initial-cluster-state existing", n.Name, ic)
			return m.writeFiles(ctx, others, n, ic)
		}},
		{stepStart, "deploy " + n.Name + "'s bundle and start it (restart template)", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			return m.startNode(ctx, n)
		}},
		{stepPromote, "wait until the learner caught up, then etcd member promote (bounded by --member-timeout)", func(ctx context.Context, j *runner.MemberJournal, res *Result) error {
			return m.promoteLearner(ctx, others, n, j, res)
		}},
		{stepProveNew, "prove " + n.Name + " serves its serials on its client and peer ports, votes, the cluster is healthy and the raft term unchanged", func(ctx context.Context, j *runner.MemberJournal, res *Result) error {
			return m.proveAdded(ctx, all, n, j)
		}},
		{stepAPIServer, "regenerate apiserver/etcd-flags and the kubeadm etcd.external block with " + n.Name + "; run the kube-apiserver client's deploy and restart templates", func(ctx context.Context, j *runner.MemberJournal, _ *Result) error {
			ic, err := joinCluster(ctx, all, j)
			if err != nil {
				return err
			}
			if err := m.writeFiles(ctx, all, n, ic); err != nil {
				return err
			}
			return m.updateAPIServer(ctx)
		}},
		{stepConfigs, "deploy the other members' regenerated configs (initial-cluster is read only at bootstrap: nothing restarts)", func(ctx context.Context, _ *runner.MemberJournal, _ *Result) error {
			return m.deployOthers(ctx, n.Name)
		}},
	}
	if m.Inv.Spec.Auth.Enabled {
		steps = append(steps, memberStep{stepAuth, "move etcd's users and roles to the spec's (auth is on; as etcdpki auth apply)", func(ctx context.Context, _ *runner.MemberJournal, _ *Result) error {
			return m.syncAuth(ctx, n.Name)
		}})
	}
	if err := m.steps(ctx, j, steps, res); err != nil {
		return err
	}
	res.ID = parseID(j.ID)
	if !m.mo.DryRun {
		m.Log.Step(stepDone, n.Name).Done("member %s (%s) added: voting and serving", n.Name, j.ID)
	}
	return nil
}

// preflightAdd refuses an add that etcd would refuse or that could hurt
// the cluster. done is true when n is a voting member already.
func (m *memberRun) preflightAdd(ctx context.Context, others *runner.Cluster, n cluster.Node, j *runner.MemberJournal) (done bool, err error) {
	h, err := others.Health(ctx)
	if err != nil {
		return false, err
	}
	if err := runner.HealthyOrError(others.Spec, h, "refusing to add a member"); err != nil {
		return false, err
	}
	l, _ := h.LeaderResult()
	j.Term = l.Status.RaftTerm
	ms, err := others.MemberList(ctx)
	if err != nil {
		return false, err
	}
	for _, mb := range ms {
		switch {
		case mb.Name == n.Name && !mb.IsLearner && runner.MemberByPeerURL(ms, j.PeerURL) == mb:
			m.Log.Step(stepBegin, n.Name).Skipped("%s is a voting member already (%x): nothing to do", n.Name, mb.ID)
			return true, nil
		case mb.Name == n.Name:
			return false, input.Errorf("member add %s: etcd has a member of that name already (%x, peer URLs %s): remove it first (etcdpki member remove %s after deleting it from the spec, or etcdctl member remove %x)", n.Name, mb.ID, strings.Join(mb.PeerURLs, ","), n.Name, mb.ID)
		case slices.Contains(mb.PeerURLs, j.PeerURL) && mb.IsLearner && mb.Name == "":
			// A learner added for this node and never started (an add
			// killed before its journal, or made by hand): continued.
			m.Log.Step(stepBegin, n.Name).Info("learner %x has %s's peer URL and never started: continuing it", mb.ID, n.Name)
			return false, nil
		case slices.Contains(mb.PeerURLs, j.PeerURL):
			return false, input.Errorf("member add %s: peer URL %s belongs to member %q (%x) already", n.Name, j.PeerURL, mb.Name, mb.ID)
		case mb.IsLearner:
			return false, &runner.UnhealthyError{When: "refusing to add a member", Reason: fmt.Sprintf("learner %x (%s) is pending: etcd allows one learner at a time; finish it (etcdpki member add NAME) or remove it (etcdctl member remove %x)", mb.ID, strings.Join(mb.PeerURLs, ","), mb.ID)}
		}
	}
	if m.Inv.Spec.Local && n.DataDir != "" {
		if entries, err := regular.ReadDir(n.DataDir); err == nil && len(entries) > 0 {
			return false, input.Errorf("member add %s: data directory %s is not empty: a new member must start from an empty one (move it away)", n.Name, n.DataDir)
		}
	}
	return false, nil
}

// writeFiles runs init's writer for the spec: n's certificates when
// missing, its configs joining initialCluster (when set), and the
// apiserver's files naming the members of running.
func (m *memberRun) writeFiles(ctx context.Context, running *runner.Cluster, n cluster.Node, initialCluster string) error {
	o := issue.Options{Out: io.Discard, Now: m.Cfg.Now, LockHeld: true, SpecYAML: m.mo.SpecYAML}
	if initialCluster != "" {
		o.Join = &issue.Join{Name: n.Name, InitialCluster: initialCluster}
	}
	// The apiserver's files name the members only: not the node being
	// added until it votes and serves, nor spec nodes yet to be added.
	o.APIServerEndpoints = running.Endpoints()
	out, err := issue.Init(ctx, m.Inv, o)
	if err != nil {
		return err
	}
	for _, id := range out.Created {
		m.Log.Step(stepCerts, id).Done("[certs] created %s", id)
	}
	return nil
}

func (m *memberRun) addLearner(ctx context.Context, others *runner.Cluster, j *runner.MemberJournal) error {
	ms, err := others.MemberList(ctx)
	if err != nil {
		return err
	}
	// A run killed after the add and before the journal: the learner is
	// found by its peer URL.
	if mb := runner.MemberByPeerURL(ms, j.PeerURL); mb != nil {
		j.ID = hexID(mb.ID)
		m.Log.Step(stepLearner, j.Name).Skipped("[learner] %s is member %x already (learner %v): continuing", j.PeerURL, mb.ID, mb.IsLearner)
		return nil
	}
	id, err := others.AddLearner(ctx, []string{j.PeerURL})
	if err != nil {
		return err
	}
	j.ID = hexID(id)
	m.Log.Step(stepLearner, j.Name).Done("[learner] added %s as learner %x", j.PeerURL, id)
	return nil
}

// joinCluster is etcd's member list as initial-cluster, naming the
// joining member (which has no name until it starts) j.Name.
func joinCluster(ctx context.Context, c *runner.Cluster, j *runner.MemberJournal) (string, error) {
	ms, err := c.MemberList(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, mb := range ms {
		name := mb.Name
		if hexID(mb.ID) == j.ID {
			name = j.Name
		}
		if name == "" {
			return "", fmt.Errorf("member %x (%s) has not started yet, so it has no name for initial-cluster: finish or remove it first", mb.ID, strings.Join(mb.PeerURLs, ","))
		}
		for _, u := range mb.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	if !strings.Contains(","+strings.Join(parts, ",")+",", ","+j.Name+"=") {
		return "", fmt.Errorf("%s (%s) is not in etcd's member list", j.Name, j.ID)
	}
	return strings.Join(parts, ","), nil
}

// startNode deploys n's bundle and starts it with its restart template.
func (m *memberRun) startNode(ctx context.Context, n cluster.Node) error {
	deploy, cmd, err := runner.NodeCommands(m.Inv.Paths, n)
	if err != nil {
		return err
	}
	if err := m.DeployNodes(ctx, []*runner.NodePlan{{Node: n, DeployCmd: deploy}}); err != nil {
		return err
	}
	if cmd == "" {
		m.Log.Step(stepStart, n.Name).Skipped("[start] %s: the spec has no restart command: start etcd on its host from %s now", n.Name, n.Dir)
		return nil
	}
	t0 := time.Now()
	if err := runner.RunCommand(ctx, "start node "+n.Name, cmd, m.Cfg.CommandTimeout); err != nil {
		return &runner.MemberError{Member: n.Name, Err: err}
	}
	took := time.Since(t0)
	m.Log.Step(stepStart, n.Name).Took(took).Done("[start] %s: started in %s", n.Name, runner.Round(took))
	return nil
}

// promoteLearner waits for the learner to catch up with the leader, then
// promotes it, all within --member-timeout.
func (m *memberRun) promoteLearner(ctx context.Context, others *runner.Cluster, n cluster.Node, j *runner.MemberJournal, res *Result) error {
	id := parseID(j.ID)
	ms, err := others.MemberList(ctx)
	if err != nil {
		return err
	}
	mb := runner.MemberByPeerURL(ms, j.PeerURL)
	if mb == nil {
		return fmt.Errorf("%s (%s) is no longer in etcd's member list: run etcdpki member add %s again", n.Name, j.ID, n.Name)
	}
	if !mb.IsLearner {
		m.Log.Step(stepPromote, n.Name).Skipped("[promote] %s is voting already", n.Name)
		return nil
	}
	t0 := time.Now()
	deadline := t0.Add(m.mo.MemberTimeout)
	behind := func() string {
		applied, leader, err := others.LearnerStatus(ctx, n.ClientURLs[0])
		if err != nil {
			return err.Error()
		}
		if applied >= leader {
			return "caught up"
		}
		return fmt.Sprintf("applied raft index %d, the leader's %d: %d entries behind", applied, leader, leader-applied)
	}
	for {
		applied, leader, err := others.LearnerStatus(ctx, n.ClientURLs[0])
		if err == nil && applied+runner.CaughtUpSlack >= leader {
			break
		}
		if time.Now().After(deadline) {
			return &runner.MemberError{Member: n.Name, Err: fmt.Errorf("learner not caught up after --member-timeout %s: %s", m.mo.MemberTimeout, behind())}
		}
		time.Sleep(runner.PollInterval)
	}
	res.CatchUp = time.Since(t0)
	m.Log.Step(stepPromote, n.Name).Took(res.CatchUp).Info("[promote] learner %s caught up in %s", n.Name, runner.Round(res.CatchUp))
	if err := others.Promote(ctx, id, time.Until(deadline), behind); err != nil {
		return &runner.MemberError{Member: n.Name, Err: err}
	}
	m.Log.Step(stepPromote, n.Name).Done("[promote] %s (%x) is a voting member", n.Name, id)
	return nil
}

// proveAdded shows the new member serving its own serials on both ports,
// voting, caught up, with the cluster healthy and the term unchanged, and
// records its certificates and start files in the journal.
func (m *memberRun) proveAdded(ctx context.Context, all *runner.Cluster, n cluster.Node, j *runner.MemberJournal) error {
	mine := runner.NodeTargets(m.Inv.Targets, n.Name)
	serials, server, peer, err := runner.ServingSerials(mine)
	if err != nil {
		return err
	}
	if err := all.WaitServing(ctx, n, server, peer, m.mo.MemberTimeout); err != nil {
		return &runner.MemberError{Member: n.Name, Err: err}
	}
	ms, err := all.MemberList(ctx)
	if err != nil {
		return err
	}
	if mb := runner.MemberByPeerURL(ms, j.PeerURL); mb == nil || mb.IsLearner {
		return &runner.MemberError{Member: n.Name, Err: errors.New("not a voting member")}
	}
	h, err := all.Health(ctx)
	if err != nil {
		return err
	}
	if err := runner.HealthyOrError(all.Spec, h, "after the add"); err != nil {
		return err
	}
	l, _ := h.LeaderResult()
	if l.Status.RaftTerm != j.Term {
		m.Log.Step(stepProveNew, n.Name).Warn("[prove] warning: the raft term went from %d to %d during the add (a leader election)", j.Term, l.Status.RaftTerm)
	}
	for _, t := range mine {
		m.Journal.InEffect[t.ID] = serials[t.ID]
	}
	if st, ok, err := runner.StartedNow(m.Inv.Paths, n); err == nil && ok {
		m.Journal.Started[n.Name] = st
	}
	m.Log.Step(stepProveNew, n.Name).Serial(server).Done("[prove] %s: client port serves %s, peer port serves %s, voting, cluster healthy, raft term %d",
		n.Name, pki.ShortSerial(server), pki.ShortSerial(peer), l.Status.RaftTerm)
	return nil
}

// withoutNode is the spec less one node: the running members while a
// node is being added (it does not serve yet), so that health probes and
// proofs look at the members that carry the cluster.
func withoutNode(s *cluster.Spec, name string) *cluster.Spec {
	c := *s
	c.Nodes = slices.DeleteFunc(slices.Clone(s.Nodes), func(n cluster.Node) bool { return n.Name == name })
	return &c
}
