package controller

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

func member(id uint64, name, peer, client string, learner bool) *etcdserverpb.Member {
	return &etcdserverpb.Member{ID: id, Name: name, PeerURLs: []string{peer}, ClientURLs: []string{client}, IsLearner: learner}
}

// TestClassify: members are matched to spec nodes by peer URL (a learner
// that never started has no name); a spec node etcd lacks is joining, a
// member of no spec node extra, and only voters are probed.
func TestClassify(t *testing.T) {
	inv := testInventory(t)
	s := inv.Spec
	n1, n2, n3 := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	ms := []*etcdserverpb.Member{
		member(1, n1.Name, n1.PeerURLs[0], n1.ClientURLs[0], false),
		member(2, "", n2.PeerURLs[0], "", true),
		member(9, "gone", "https://10.9.9.9:2380", "https://10.9.9.9:2379", false),
	}
	v := classify(s, ms)
	if v.learner == nil || v.learnerNode.Name != n2.Name {
		t.Errorf("learner %+v (%s), want %s's", v.learner, v.learnerNode.Name, n2.Name)
	}
	if len(v.joining) != 1 || v.joining[0].Name != n3.Name {
		t.Errorf("joining %v, want %s", v.joining, n3.Name)
	}
	// A member whose peer URL the spec no longer names is still its
	// node's, by name: never a removal and a join.
	moved := classify(s, append(ms, member(3, n3.Name, "https://10.3.3.3:2380", n3.ClientURLs[0], false)))
	if len(moved.joining) != 0 || len(moved.extra) != 1 || len(moved.voters) != 2 {
		t.Errorf("a member matched by name: joining %v, extra %v, voters %v", moved.joining, moved.extra, moved.voters)
	}
	if len(v.extra) != 1 || v.extra[0].ID != 9 {
		t.Errorf("extra %v, want member 9", v.extra)
	}
	if !slices.Equal(v.notVoting, []string{n2.Name, n3.Name}) || !slices.Equal(v.voters, []string{n1.ClientURLs[0]}) {
		t.Errorf("not voting %v, voters %v", v.notVoting, v.voters)
	}
	if got := v.servers(s); !slices.Equal(got, []string{n1.ClientURLs[0]}) {
		t.Errorf("servers %v, want only the voter in the spec", got)
	}
}

// TestInitialCluster: etcd's member list as initial-cluster, the new
// learner under its node's name; another learner without a name is an
// error (it has not started, so no name can be written for it).
func TestInitialCluster(t *testing.T) {
	ms := []*etcdserverpb.Member{
		member(1, "a", "https://10.0.0.1:2380", "", false),
		member(5, "", "https://10.0.0.5:2380", "", true),
	}
	got, err := initialCluster(ms, 5, "e")
	if err != nil || got != "a=https://10.0.0.1:2380,e=https://10.0.0.5:2380" {
		t.Errorf("initialCluster = %q, %v", got, err)
	}
	if _, err := initialCluster(ms, 1, "a"); err == nil {
		t.Error("an unnamed other learner was written into initial-cluster")
	}
}

// TestForgetStale: a joining node deleted from the spec is forgotten; a
// voter etcd lost outside the controller is marked removed, so its
// certificates are revoked all the same; entries of the spec are kept.
func TestForgetStale(t *testing.T) {
	inv := testInventory(t)
	st := &v1alpha1.EtcdClusterStatus{}
	st.SetMember(v1alpha1.MemberStatus{Name: inv.Spec.Nodes[0].Name, ID: "1", State: v1alpha1.MemberVoter})
	st.SetMember(v1alpha1.MemberStatus{Name: "was-joining", State: v1alpha1.MemberJoining})
	st.SetMember(v1alpha1.MemberStatus{Name: "lost-voter", ID: "7", State: v1alpha1.MemberVoter})
	forgetStale(st, inv.Spec, memberView{ms: []*etcdserverpb.Member{member(1, "x", "https://10.0.0.1:2380", "", false)}})
	if _, ok := st.Member("was-joining"); ok {
		t.Error("a joining node deleted from the spec is still in status.members")
	}
	if m, _ := st.Member("lost-voter"); m.State != v1alpha1.MemberRemoved {
		t.Errorf("lost voter: %+v, want removed", m)
	}
	if _, ok := st.Member(inv.Spec.Nodes[0].Name); !ok {
		t.Error("a spec node's entry was dropped")
	}
}

// TestMembershipRefusalIsDegraded: a refused membership change is the
// Degraded condition's reason even while a member is also unreachable.
func TestMembershipRefusalIsDegraded(t *testing.T) {
	inv := testInventory(t)
	cl := &v1alpha1.EtcdCluster{}
	o := observation{memberReason: ReasonBelowQuorum, memberMsg: "refusing", proofs: []MemberProof{{Node: "etcd-node-2", Err: errors.New("down")}}}
	applyObservation(cl, inv, o, time.Now())
	c := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionDegraded)
	if c == nil || c.Status != "True" || c.Reason != ReasonBelowQuorum {
		t.Errorf("Degraded %+v, want True with %s", c, ReasonBelowQuorum)
	}
}
