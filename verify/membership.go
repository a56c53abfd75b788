package verify

import (
	"fmt"
	"slices"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// CheckMembership compares etcd's member list with the spec: the spec is
// the desired membership, and etcdpki member add/remove move the cluster
// toward it one member at a time.
const CheckMembership = "membership"

// membershipChecks warns, naming the command to run, on a member of the
// cluster that is not in the spec, a learner left pending (an add that
// failed or was killed) and a spec node that is not a member.
func membershipChecks(inv *pki.Inventory, c *probe.Cluster) []Check {
	if c == nil || len(c.Members) == 0 {
		return nil
	}
	s := inv.Spec
	var out []Check
	warn := func(target, format string, args ...any) {
		out = append(out, Check{Name: CheckMembership, Target: target, Status: Warn, Reason: fmt.Sprintf(format, args...)})
	}
	inSpec := func(m probe.Member) (cluster.Node, bool) {
		for _, n := range s.Nodes {
			if n.Name == m.Name || len(m.PeerURLs) > 0 && slices.Contains(n.PeerURLs, m.PeerURLs[0]) {
				return n, true
			}
		}
		return cluster.Node{}, false
	}
	for _, m := range c.Members {
		n, ok := inSpec(m)
		switch {
		case m.IsLearner && ok:
			warn("member "+m.ID.String(), "learner %s (%v) is pending, left by an add that did not finish: continue it with `etcdpki member add %s`, or remove it with `etcdctl member remove %s`", n.Name, m.PeerURLs, n.Name, m.ID)
		case m.IsLearner:
			warn("member "+m.ID.String(), "learner %s (%v) is pending and not in the spec: remove it with `etcdctl member remove %s`", m.ID, m.PeerURLs, m.ID)
		case !ok:
			warn("member "+m.Name, "member %s (%s, %v) is not in the spec: remove it with `etcdpki member remove %s`, or add it to the spec", m.Name, m.ID, m.PeerURLs, m.Name)
		}
	}
	for _, n := range s.Nodes {
		if !slices.ContainsFunc(c.Members, func(m probe.Member) bool { return m.Name == n.Name || slices.Contains(m.PeerURLs, n.PeerURLs[0]) }) {
			warn("node "+n.Name, "spec node %s (%s) is not a member of the cluster: add it with `etcdpki member add %s`", n.Name, n.PeerURLs[0], n.Name)
		}
	}
	return out
}
