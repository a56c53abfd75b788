package runner

import (
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// memberName maps a member ID to the spec node whose endpoint answered
// with it. Endpoints are probed in spec order.
func memberName(s *cluster.Spec, h *probe.Cluster, id probe.ID) string {
	if id == 0 {
		return ""
	}
	for i, r := range h.Endpoints {
		if r.Status != nil && r.Status.MemberID == id && i < len(s.Nodes) {
			return s.Nodes[i].Name
		}
	}
	return ""
}

// Rollout is what the runner deploys, proves and rolls: the nodes and
// clients whose files are (or will be) new, and the restart order. Each
// operation builds one (the leaf rotation's is embedded in its Plan).
type Rollout struct {
	// Nodes are the nodes whose files are (or will be) new, in spec order.
	Nodes []*NodePlan
	// Clients are the clients whose certificate is (or will be) new.
	Clients []*ClientPlan
	// Order lists the nodes to restart: followers first, the leader last.
	Order []string
	// Leader is the member that led when the plan was made, "" if unknown.
	Leader string
	// OrderNote explains an order made without a view of the cluster.
	OrderNote string
}

// NodePlan is one node whose files changed.
type NodePlan struct {
	Node cluster.Node
	// Targets are the node's certificates whose files differ from what
	// is in effect.
	Targets []pki.Target
	// All are all of the node's certificates: a restart or a proof
	// checks the serving pairs whatever triggered it.
	All []pki.Target
	// Leaves is true when the serving or peer certificate changed. etcd
	// (3.2 and later) loads them at its next TLS handshake, so they
	// alone need no restart, only a proof that they are served.
	Leaves bool
	// StartChanges lists what changed among the files etcd reads only
	// at start (reasonCA, reasonConfig) since the member was last
	// started, as recorded in the journal.
	StartChanges []string
	// Restart is true when the member is restarted in this run, and
	// Reasons say why (set by decide).
	Restart bool
	Reasons []string
	// Prove is true when, instead of a restart, fresh TLS handshakes
	// must show its renewed certificates in effect (set by decide).
	Prove bool
	// DeployCmd and RestartCmd are the rendered templates; "" for none.
	DeployCmd, RestartCmd string
}

// ClientPlan is one client whose certificate changed.
type ClientPlan struct {
	Client                cluster.Client
	Target                pki.Target
	DeployCmd, RestartCmd string
}

// Restarts counts the nodes to restart.
func (p *Rollout) Restarts() int {
	n := 0
	for _, np := range p.Nodes {
		if np.Restart {
			n++
		}
	}
	return n
}

// Proofs counts the nodes to prove.
func (p *Rollout) Proofs() int {
	n := 0
	for _, np := range p.Nodes {
		if np.Prove {
			n++
		}
	}
	return n
}

// Node is the plan of the node named name, nil if none.
func (p *Rollout) Node(name string) *NodePlan {
	for _, np := range p.Nodes {
		if np.Node.Name == name {
			return np
		}
	}
	return nil
}

// SetOrder sets the restart order from a health probe: followers in spec
// order, then the leader, whose restart is preceded by a hand-off.
func (p *Rollout) SetOrder(s *cluster.Spec, h *probe.Cluster) {
	p.Order = nil
	leader := ""
	if h != nil {
		leader = memberName(s, h, h.Leader)
	}
	p.Leader = leader
	if leader == "" && p.OrderNote == "" {
		p.OrderNote = "leader unknown: spec order; the leader is still handed off when its turn comes"
	}
	for _, np := range p.Nodes {
		if np.Restart && np.Node.Name != leader {
			p.Order = append(p.Order, np.Node.Name)
		}
	}
	if np := p.Node(leader); np != nil && np.Restart {
		p.Order = append(p.Order, leader)
	}
}
