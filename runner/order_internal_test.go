package runner

import (
	"net"
	"slices"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
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

func TestOrderPutsTheLeaderLast(t *testing.T) {
	s := threeNodes()
	for _, tc := range []struct {
		leader  probe.ID
		restart []string
		want    []string
	}{
		{1, []string{"a", "b", "c"}, []string{"b", "c", "a"}},
		{2, []string{"a", "b", "c"}, []string{"a", "c", "b"}},
		{3, []string{"a", "c"}, []string{"a", "c"}},
		{3, []string{"b"}, []string{"b"}},
		{0, []string{"a", "b", "c"}, []string{"a", "b", "c"}}, // no view of the cluster: spec order
	} {
		p := &Rollout{}
		for _, n := range s.Nodes {
			p.Nodes = append(p.Nodes, &NodePlan{Node: n, Restart: slices.Contains(tc.restart, n.Name)})
		}
		var h *probe.Cluster
		if tc.leader != 0 {
			h = view(tc.leader, [3]uint64{10, 10, 10})
		}
		p.SetOrder(s, h)
		if !slices.Equal(p.Order, tc.want) {
			t.Errorf("leader %d, restarting %v: order %v, want %v", tc.leader, tc.restart, p.Order, tc.want)
		}
	}
}

func TestTransfereePrefersRotatedThenCaughtUp(t *testing.T) {
	s := threeNodes()
	for _, tc := range []struct {
		name      string
		h         *probe.Cluster
		rotated   []string
		want      string
		wantNoOne bool
	}{
		{"rotated wins over more caught up", view(1, [3]uint64{10, 9, 10}), []string{"b"}, "b", false},
		{"most caught up when none rotated", view(1, [3]uint64{10, 8, 9}), nil, "c", false},
		{"never the leader itself", view(1, [3]uint64{10, 8, 9}), []string{"a"}, "c", false},
		{"unhealthy members are skipped", view(1, [3]uint64{10, 9, 10}, 2), []string{"c"}, "b", false},
		{"nobody healthy", view(1, [3]uint64{10, 9, 10}, 1, 2), nil, "", true},
	} {
		id, name := transferee(s, tc.h, "a", tc.rotated)
		if tc.wantNoOne {
			if id != 0 {
				t.Errorf("%s: picked %s, want nobody", tc.name, name)
			}
			continue
		}
		if name != tc.want {
			t.Errorf("%s: picked %q, want %q", tc.name, name, tc.want)
		}
	}
}

// The dry run says when the leader hands off: after the first restart,
// or, when it is the only member to restart, before its own.
