package verify

import (
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/probe"
)

// answered builds the result of an endpoint that answered everything, as
// member id of cluster cid believing leader is leader.
func answered(ep string, cid, id, leader probe.ID, index uint64, members ...probe.Member) probe.Result {
	return probe.Result{
		Endpoint: ep, Healthy: true, ClusterID: cid,
		Status:  &probe.Status{MemberID: id, Leader: leader, RaftIndex: index, RaftAppliedIndex: index},
		Members: members,
	}
}

func analysed(rs ...probe.Result) *probe.Cluster {
	// Health's analysis runs on real probe results; feed it these.
	return probe.Analyse(rs)
}

func TestClusterChecks(t *testing.T) {
	m1 := probe.Member{ID: 1, Name: "etcd-1", ClientURLs: []string{"https://10.0.0.1:2379"}, PeerURLs: []string{"https://10.0.0.1:2380"}}
	m2 := probe.Member{ID: 2, Name: "etcd-2", ClientURLs: []string{"https://10.0.0.2:2379"}, PeerURLs: []string{"https://10.0.0.2:2380"}}
	m3 := probe.Member{ID: 3, Name: "etcd-3", ClientURLs: []string{"https://10.0.0.3:2379"}, PeerURLs: []string{"https://10.0.0.3:2380"}}
	e1, e2, e3 := "https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"
	tests := []struct {
		name   string
		c      *probe.Cluster
		strict bool
		check  string
		st     Status
		reason string
	}{
		{"agreement", analysed(answered(e1, 9, 1, 2, 10, m1, m2, m3), answered(e2, 9, 2, 2, 10, m1, m2, m3), answered(e3, 9, 3, 2, 11, m1, m2, m3)),
			false, CheckLeader, OK, "etcd-2 (2)"},
		{"two clusters", analysed(answered(e1, 9, 1, 2, 10, m1, m2), answered(e2, 9, 2, 2, 10, m1, m2), answered(e3, 7, 3, 3, 1, m3)),
			false, CheckClusterID, Fail, "different clusters"},
		{"two leaders", analysed(answered(e1, 9, 1, 1, 10, m1, m2, m3), answered(e2, 9, 2, 2, 10, m1, m2, m3)),
			false, CheckLeader, Fail, "disagree on the leader"},
		{"no leader", analysed(answered(e1, 9, 1, 0, 10, m1, m2, m3), answered(e2, 9, 2, 0, 10, m1, m2, m3)),
			false, CheckLeader, Fail, "no leader"},
		{"member lists differ", analysed(answered(e1, 9, 1, 1, 10, m1, m2, m3), answered(e2, 9, 2, 1, 10, m1, m2)),
			false, CheckMembers, Fail, e2 + " sees [etcd-1, etcd-2]"},
		{"member not listed", analysed(answered(e1, 9, 1, 1, 10, m1, m2, m3), answered(e2, 9, 2, 1, 10, m1, m2, m3)),
			false, CheckCoverage, Warn, "etcd-3 [https://10.0.0.3:2379]"},
		{"member not listed, strict", analysed(answered(e1, 9, 1, 1, 10, m1, m2, m3), answered(e2, 9, 2, 1, 10, m1, m2, m3)),
			true, CheckCoverage, Fail, "etcd-3"},
		{"raft spread", analysed(answered(e1, 9, 1, 1, 5000, m1, m2, m3), answered(e2, 9, 2, 1, 10, m1, m2, m3), answered(e3, 9, 3, 1, 5000, m1, m2, m3)),
			false, CheckRaftIndex, Warn, "10..5000"},
		{"quorum from the members reached", analysed(answered(e1, 9, 1, 1, 10, m1, m2, m3), answered(e2, 9, 2, 1, 10, m1, m2, m3)),
			false, CheckQuorum, OK, "2 of 3 voting members healthy, 2 needed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checks := clusterChecks(tc.c)
			if tc.strict {
				strict(checks)
			}
			for _, c := range checks {
				if c.Name != tc.check {
					continue
				}
				if c.Status != tc.st || !strings.Contains(c.Reason, tc.reason) {
					t.Errorf("%s = %s %q, want %s mentioning %q", c.Name, c.Status, c.Reason, tc.st, tc.reason)
				}
				return
			}
			t.Errorf("no %s check", tc.check)
		})
	}
}
