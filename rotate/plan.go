package rotate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Plan is what one run will do: the certificates to renew, the hosts
// whose files changed and must be deployed, the members whose renewed
// certificates are proven in effect without a restart, and the members
// to restart, in order.
type Plan struct {
	// Due are the certificates to renew now, with the reason.
	Due []pki.CertInfo
	// Missing are certificates the spec calls for that were never issued
	// (a node just added to the spec). They are issued and recorded as in
	// effect without a restart: no member runs with them yet.
	Missing []pki.CertInfo
	// Rollout is the nodes and clients whose files are (or will be) new
	// and the restart order: what the runner deploys, proves and rolls.
	runner.Rollout
	// Baseline are certificates recorded as in effect for the first time.
	Baseline map[string]string
	// StartedBaseline are nodes seen for the first time, with the files
	// their members are taken to have been started with: those in their
	// bundles now.
	StartedBaseline map[string]runner.Started
	// Members are every node of the spec, in spec order, for the dry
	// run's verdict on each.
	Members []string
	// NoVerify is --no-verify: nothing is proven (set by decide).
	NoVerify bool
	// Refusal is why a real run would refuse to change anything (the
	// cluster is not healthy), for the dry run to say; "" if it would not.
	Refusal string
	// Warnings are things the operator should know but that do not stop
	// the run (a CA nearing its end, which rotate does not replace).
	Warnings []string
	// Certs are the CA and every certificate as the plan found them.
	Certs []pki.CertInfo
}

// Empty reports whether there is nothing to do.
func (p *Plan) Empty() bool {
	return len(p.Due) == 0 && len(p.Missing) == 0 && len(p.Nodes) == 0 && len(p.Clients) == 0
}

// leaves reports whether any node's serving or peer certificate changes.
func (p *Plan) leaves() bool {
	return slices.ContainsFunc(p.Nodes, func(np *runner.NodePlan) bool { return np.Leaves })
}

// makePlan compares the PKI directory with the spec (what is due) and
// with the journal (what is not in effect yet). It changes nothing. Its
// phases: classify every certificate, group what changes by node and
// client, add members whose start-time files changed, render their
// commands.
func makePlan(inv *pki.Inventory, st *runner.State, renewBefore time.Duration, now time.Time) (*Plan, error) {
	infos, err := pki.List(inv, renewBefore, now)
	if err != nil {
		return nil, err
	}
	p := &Plan{Baseline: map[string]string{}, StartedBaseline: map[string]runner.Started{}, Certs: infos}
	// During a CA rotation a renewal from the old CA would undo its
	// stages: leaves wait for etcdpki ca rotate, which re-issues them all.
	next, err := pki.LoadNextCA(inv.Paths)
	if err != nil {
		return nil, err
	}
	cl, err := p.classify(inv, st, next != nil)
	if err != nil {
		return nil, err
	}
	p.group(inv, cl)
	if err := p.startChanges(inv, st); err != nil {
		return nil, err
	}
	slices.SortStableFunc(p.Nodes, func(a, b *runner.NodePlan) int {
		return slices.Index(p.Members, a.Node.Name) - slices.Index(p.Members, b.Node.Name)
	})
	for _, t := range inv.Targets {
		if np := p.Node(t.Owner); np != nil {
			np.All = append(np.All, t)
		}
	}
	if err := p.render(inv.Paths); err != nil {
		return nil, err
	}
	return p, nil
}

// classified is what classify found: the certificates to renew, and the
// valid ones replaced from outside since the last run.
type classified struct{ due, changed map[string]bool }

// classify sorts every certificate of the listing into the plan: due,
// missing, changed from outside, or invalid (which refuses the run).
// During a CA rotation nothing is due: the rotation re-issues every leaf.
func (p *Plan) classify(inv *pki.Inventory, st *runner.State, caRotation bool) (classified, error) {
	cl := classified{due: map[string]bool{}, changed: map[string]bool{}}
	held := 0
	var invalid, fix []string
	for _, info := range p.Certs {
		if info.Target == nil {
			if info.Status != pki.StatusOK {
				p.Warnings = append(p.Warnings, fmt.Sprintf("CA %s: %s (rotate renews leaves only)", info.Path, info.Reason))
			}
			continue
		}
		t := *info.Target
		switch info.Status {
		case pki.StatusOK:
			prev, known := st.InEffect[t.ID]
			switch {
			case !known:
				// First sight of this certificate: whatever is on disk is
				// what its member was started with.
				p.Baseline[t.ID] = info.Serial
			case prev != info.Serial:
				// Replaced from outside since the last run, and valid
				// (pair, chain and SANs: Inspect said ok).
				cl.changed[t.ID] = true
			}
		case pki.StatusHeld:
			// In use on its host with a key etcdpki never had, and not
			// due: nothing to do until it is.
		case pki.StatusInvalid:
			invalid = append(invalid, fmt.Sprintf("%s (%s): %s", t.ID, info.Path, info.Reason))
			fix = append(fix, t.ID)
		case pki.StatusMissing, pki.StatusDue, pki.StatusExpired, pki.StatusSANMismatch:
			if caRotation {
				held++
				continue
			}
			if info.Status == pki.StatusMissing {
				p.Missing = append(p.Missing, info)
				continue
			}
			fallthrough
		default:
			p.Due = append(p.Due, info)
			cl.due[t.ID] = true
			if _, known := st.InEffect[t.ID]; !known && info.Serial != "" {
				// Recorded before it is renewed, so that a run dying
				// after the renewal leaves a difference for the next
				// run to roll, rather than a new serial that looks as
				// if it had always been in effect.
				p.Baseline[t.ID] = info.Serial
			}
		}
	}
	if held > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d certificates due or missing are left alone: a CA rotation is in progress (%s); etcdpki ca rotate re-issues every leaf from the new CA",
			held, inv.Paths.NextCADir()))
	}
	if len(invalid) > 0 {
		// Renewing would overwrite files someone put there on purpose;
		// rolling would put broken files into effect. Neither is ours to
		// decide at 3 a.m.
		return cl, input.Errorf("refusing to rotate: invalid certificate files: %s; put the right files back, or replace them (the old ones kept in PKI/backup) with: etcdpki certs renew %s",
			strings.Join(invalid, "; "), strings.Join(fix, " "))
	}
	return cl, nil
}

// group puts every due or changed certificate under its node or client.
func (p *Plan) group(inv *pki.Inventory, cl classified) {
	s := inv.Spec
	for _, t := range inv.Targets {
		if !cl.due[t.ID] && !cl.changed[t.ID] {
			continue
		}
		if n, ok := s.Node(t.Owner); ok {
			np := p.nodeFor(n)
			np.Targets = append(np.Targets, t)
			if t.Kind.Name == ca.KindServer.Name || t.Kind.Name == ca.KindPeer.Name {
				np.Leaves = true
			}
			continue
		}
		if c, ok := s.Client(t.Owner); ok {
			p.Clients = append(p.Clients, &runner.ClientPlan{Client: c, Target: t})
		}
	}
}

// nodeFor is the node's plan, added when it has none yet.
func (p *Plan) nodeFor(n cluster.Node) *runner.NodePlan {
	np := p.Node(n.Name)
	if np == nil {
		np = &runner.NodePlan{Node: n}
		p.Nodes = append(p.Nodes, np)
	}
	return np
}

// startChanges adds every member whose CA bundle or etcd.conf.yml, the
// files etcd reads only at start, changed since it was last started.
func (p *Plan) startChanges(inv *pki.Inventory, st *runner.State) error {
	for _, n := range inv.Spec.Nodes {
		p.Members = append(p.Members, n.Name)
		cur, ok, err := runner.StartedNow(inv.Paths, n)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		prev, known := st.Started[n.Name]
		if !known {
			// First sight: the member was started with what is in its
			// bundle (what init wrote). A change made before this run
			// cannot be told from that; every later one can.
			p.StartedBaseline[n.Name] = cur
			continue
		}
		var changes []string
		if prev.CA != cur.CA {
			changes = append(changes, reasonCA)
		}
		if prev.Config != cur.Config {
			changes = append(changes, reasonConfig)
		}
		if prev.Env != cur.Env {
			changes = append(changes, reasonEnv)
		}
		if len(changes) > 0 {
			p.nodeFor(n).StartChanges = changes
		}
	}
	return nil
}

// render fills in every node's and client's deploy and restart commands.
func (p *Plan) render(paths pki.Paths) error {
	var err error
	for _, np := range p.Nodes {
		if np.DeployCmd, np.RestartCmd, err = runner.NodeCommands(paths, np.Node); err != nil {
			return err
		}
	}
	for _, cp := range p.Clients {
		if cp.DeployCmd, cp.RestartCmd, err = runner.ClientCommands(cp.Client, cp.Target.Dir); err != nil {
			return err
		}
	}
	return nil
}

// decide says, per node, whether its member is restarted (and why) or
// its renewed certificates are proven in effect without a restart. h is
// a view of the cluster, nil when there is none yet; with one, members
// older than etcd 3.2 are restarted in auto mode too.
func (p *Plan) decide(s *cluster.Spec, mode RestartMode, noVerify bool, h *probe.Cluster) {
	p.NoVerify = noVerify
	for _, np := range p.Nodes {
		np.Reasons = slices.Clone(np.StartChanges)
		if v := memberVersion(s, h, np.Node.Name); mode == RestartAuto && np.Leaves && v != "" && !loadsLeavesAtHandshake(v) {
			np.Reasons = append(np.Reasons, reasonOldEtcd(v))
		}
		if mode == RestartAlways && np.Leaves && len(np.Reasons) == 0 {
			np.Reasons = []string{reasonAlways}
		}
		np.Restart = mode != RestartNever && len(np.Reasons) > 0
		np.Prove = !np.Restart && mode != RestartAlways && !noVerify
	}
}

// memberVersion is the etcd version node reported in h, "" if unknown.
func memberVersion(s *cluster.Spec, h *probe.Cluster, node string) string {
	if h == nil {
		return ""
	}
	for i, r := range h.Endpoints {
		if i < len(s.Nodes) && s.Nodes[i].Name == node && r.Status != nil {
			return r.Status.Version
		}
	}
	return ""
}

// verdict is the dry run's one line on a member of the plan.
func verdict(np *runner.NodePlan, mode RestartMode) string {
	switch {
	case np.Restart:
		return "restart: " + strings.Join(np.Reasons, ", ")
	case slices.Contains(np.Reasons, reasonCA):
		return fmt.Sprintf("no restart (--restart=never) although %s: the new trust is not in effect until the member restarts", strings.Join(np.Reasons, ", "))
	case len(np.Reasons) > 0:
		return fmt.Sprintf("no restart (--restart=never) although %s: that takes effect at the member's next restart", strings.Join(np.Reasons, ", "))
	case !np.Leaves && mode == RestartAlways:
		return "no restart: only its healthcheck client certificate changes, which etcd does not use"
	}
	return "no restart: etcd loads renewed leaves at its next handshake"
}

// check refuses a plan that cannot work before anything is changed.
func (p *Plan) check(s *cluster.Spec, mode RestartMode) error {
	for _, np := range p.Nodes {
		if !s.Local && np.DeployCmd == "" {
			return input.Errorf("node %s: its files change but the spec has no deploy command to copy them to %s (set nodes[].deploy)", np.Node.Name, np.Node.Dir)
		}
		if np.Restart && np.RestartCmd == "" {
			hint := "set nodes[].restart"
			if mode == RestartAlways && slices.Equal(np.Reasons, []string{reasonAlways}) {
				hint += ", or use --restart=auto: renewed leaves need no restart"
			}
			return input.Errorf("node %s: must restart (%s) but the spec has no restart command (%s)", np.Node.Name, strings.Join(np.Reasons, ", "), hint)
		}
	}
	return nil
}
