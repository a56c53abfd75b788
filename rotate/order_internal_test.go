package rotate

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/runner"
)

func threeNodes() *cluster.Spec {
	s := &cluster.Spec{}
	for _, n := range []string{"a", "b", "c"} {
		s.Nodes = append(s.Nodes, cluster.Node{Name: n, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	}
	return s
}

// view is a probe of a, b, c (member IDs 1, 2, 3) led by leader, with the
// given applied indexes; unhealthy endpoints fail their read.
func view(leader probe.ID, applied [3]uint64, unhealthy ...int) *probe.Cluster {
	h := &probe.Cluster{Leader: leader}
	for i := range 3 {
		r := probe.Result{Healthy: !slices.Contains(unhealthy, i),
			Status: &probe.Status{MemberID: probe.ID(i + 1), Leader: leader, RaftAppliedIndex: applied[i]}}
		h.Endpoints = append(h.Endpoints, r)
	}
	return h
}

func TestPrintSaysWhenTheLeaderHandsOff(t *testing.T) {
	s := threeNodes()
	for _, tc := range []struct {
		restart []string
		want    string
	}{
		{[]string{"a", "b", "c"}, "after the first restart it hands leadership to that member"},
		{[]string{"a"}, "the only member to restart; it first hands leadership to another member"},
	} {
		p := &Plan{}
		for _, n := range s.Nodes {
			p.Nodes = append(p.Nodes, &runner.NodePlan{Node: n, Restart: slices.Contains(tc.restart, n.Name)})
		}
		p.SetOrder(s, view(1, [3]uint64{10, 10, 10}))
		var b strings.Builder
		p.Print(&b, RestartAlways)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("restarting %v with a leading: plan does not say %q:\n%s", tc.restart, tc.want, b.String())
		}
	}
}

func TestLoadsLeavesAtHandshakeFrom32(t *testing.T) {
	for v, want := range map[string]bool{
		"3.6.16": true, "3.2.0": true, "3.4.23": true, "4.0.0": true,
		"3.1.20": false, "3.0.17": false, "2.3.8": false,
		"": true, "unknown": true, // no version to go by: assume a modern etcd
	} {
		if got := loadsLeavesAtHandshake(v); got != want {
			t.Errorf("loadsLeavesAtHandshake(%q) = %v, want %v", v, got, want)
		}
	}
}

// In auto mode a renewed leaf restarts only a member whose etcd reads its
// certificates at start (before 3.2), and the plan says so; always
// restarts every member whose leaves changed; never restarts none.
func TestDecideRestartsOnlyWhatNeedsIt(t *testing.T) {
	s := threeNodes()
	h := view(1, [3]uint64{10, 10, 10})
	h.Endpoints[1].Status.Version = "3.1.20"
	h.Endpoints[0].Status.Version = "3.6.16"
	h.Endpoints[2].Status.Version = "3.6.16"
	for _, tc := range []struct {
		mode     RestartMode
		noVerify bool
		restart  []string
		prove    []string
	}{
		{RestartAuto, false, []string{"b"}, []string{"a", "c"}},
		{RestartAlways, false, []string{"a", "b", "c"}, nil},
		{RestartNever, false, nil, []string{"a", "b", "c"}},
		{RestartNever, true, nil, nil},
	} {
		p := &Plan{}
		for _, n := range s.Nodes {
			p.Nodes = append(p.Nodes, &runner.NodePlan{Node: n, Leaves: true})
		}
		p.decide(s, tc.mode, tc.noVerify, h)
		var restart, prove []string
		for _, np := range p.Nodes {
			if np.Restart {
				restart = append(restart, np.Node.Name)
			}
			if np.Prove {
				prove = append(prove, np.Node.Name)
			}
		}
		if !slices.Equal(restart, tc.restart) || !slices.Equal(prove, tc.prove) {
			t.Errorf("%s (no-verify %v): restart %v prove %v, want %v and %v", tc.mode, tc.noVerify, restart, prove, tc.restart, tc.prove)
		}
		if tc.mode == RestartAuto {
			if got := verdict(p.Nodes[1], tc.mode); got != "restart: etcd 3.1.20 reads its certificates only at start (before 3.2)" {
				t.Errorf("verdict on the 3.1 member: %q", got)
			}
			if got := verdict(p.Nodes[0], tc.mode); got != "no restart: etcd loads renewed leaves at its next handshake" {
				t.Errorf("verdict on a 3.6 member: %q", got)
			}
		}
	}
}
