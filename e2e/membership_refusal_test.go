package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/controller"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

// TestMembershipRefusals: membership changes the controller refuses are
// Degraded with a reason, and nothing is done: a spec node whose agent
// never reported (no learner is added), two members deleted from the
// spec at once, and a removal that would leave no healthy quorum (no
// member removed, nothing revoked). Each is undone by putting the spec
// back, and Degraded clears.
func TestMembershipRefusals(t *testing.T) {
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod"})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := startEtcdpki(t, e)
	r.waitMembers(t, ctx, "the three members recorded as voters", func(ec *v1alpha1.EtcdCluster) bool { return votersAre(ec, "etcd-1", "etcd-2", "etcd-3") })
	orig := r.cluster(t, ctx).Spec.Nodes
	without := func(names ...string) func(*v1alpha1.EtcdClusterSpec) {
		return func(s *v1alpha1.EtcdClusterSpec) {
			s.Nodes = slices.DeleteFunc(slices.Clone(orig), func(n v1alpha1.NodeSpec) bool { return slices.Contains(names, n.Name) })
		}
	}
	restore := func(t *testing.T) {
		r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) { s.Nodes = orig })
		r.waitMembers(t, ctx, "Degraded False", func(ec *v1alpha1.EtcdCluster) bool {
			c := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded)
			_, stale := ec.Status.Member("etcd-4")
			return c != nil && c.Status == "False" && !stale && votersAre(ec, "etcd-1", "etcd-2", "etcd-3")
		})
	}
	nothingDone := func(t *testing.T, ec *v1alpha1.EtcdCluster) {
		t.Helper()
		// Past a few passes of the controller (MemberPoll): still nothing.
		time.Sleep(3 * controller.MemberPoll)
		if voters, learners := etcdMembers(t, e); len(voters) != 3 || len(learners) != 0 {
			t.Errorf("voters %v, learners %v: the refused change was made", voters, learners)
		}
		if rv := r.cluster(t, ctx).Spec.Revocations; len(rv) != 0 {
			t.Errorf("spec.revocations %+v after a refused change", rv)
		}
		c := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded)
		t.Logf("Degraded %s: %s", c.Reason, c.Message)
	}

	t.Run("agent absent", func(t *testing.T) {
		m4, node := r.Etcd.JoinNode(t, nil)
		r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
			s.Nodes = append(slices.Clone(orig), v1alpha1.NodeSpec{Name: node.Name, IPs: node.IPs, ClientPort: node.ClientPort, PeerPort: node.PeerPort, DataDir: m4.DataDir})
		})
		nothingDone(t, r.waitCondition(t, ctx, controller.ReasonAgentAbsent))
		if m, _ := r.cluster(t, ctx).Status.Member(node.Name); m.State != v1alpha1.MemberJoining || m.ID != "" {
			t.Errorf("status.members[%s] = %+v, want joining without an ID", node.Name, m)
		}
		r.Etcd.RemoveNode(t, node.Name)
		restore(t)
	})
	t.Run("two removals at once", func(t *testing.T) {
		r.editSpec(t, ctx, without("etcd-2", "etcd-3"))
		nothingDone(t, r.waitCondition(t, ctx, controller.ReasonTooManyRemovals))
		restore(t)
	})
	t.Run("below quorum", func(t *testing.T) {
		m2 := r.Etcd.Member("etcd-2")
		if err := m2.Stop(); err != nil {
			t.Fatal(err)
		}
		r.editSpec(t, ctx, without("etcd-3"))
		nothingDone(t, r.waitCondition(t, ctx, controller.ReasonBelowQuorum))
		if err := m2.Start(); err != nil {
			t.Fatal(err)
		}
		if err := m2.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		restore(t)
	})
	t.Run("join abandoned", func(t *testing.T) {
		// etcd-4 without a restart template: its agent makes its pairs,
		// the learner is added, but nothing starts it. Deleted from the
		// spec, the learner is removed and the pairs it was issued are
		// revoked, though it never served.
		m4, node := r.Etcd.JoinNode(t, nil)
		r.NodeDirs[m4.Name] = r.Etcd.Paths.NodeDir(m4.Name)
		r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
			s.Nodes = append(slices.Clone(orig), v1alpha1.NodeSpec{Name: node.Name, IPs: node.IPs, ClientPort: node.ClientPort, PeerPort: node.PeerPort, DataDir: m4.DataDir})
		})
		selfhost.StartEtcdpki(t, "agent-"+m4.Name, r.AgentArgs(t, m4.Name, r.AgentKubeconfig(t, m4.Name), r.ns)...)
		ec := r.waitMembers(t, ctx, m4.Name+" a learner started by nobody", func(ec *v1alpha1.EtcdCluster) bool {
			m, _ := ec.Status.Member(m4.Name)
			return m.State == v1alpha1.MemberLearner && m.StartedID == m.ID && len(ownerSerials(ec, m4.Name)) == 3
		})
		certs := ownerSerials(ec, m4.Name)
		if _, learners := etcdMembers(t, e); len(learners) != 1 {
			t.Fatalf("learners %v, want %s's", learners, m4.Name)
		}
		r.Etcd.RemoveNode(t, m4.Name)
		r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) { s.Nodes = orig })
		r.waitMembers(t, ctx, m4.Name+"'s certificates in spec.revocations", func(ec *v1alpha1.EtcdCluster) bool {
			n := 0
			for _, rv := range ec.Spec.Revocations {
				if id, ok := certs[rv.Serial]; ok && rv.Target == id {
					n++
				}
			}
			return n == 3 && len(ownerSerials(ec, m4.Name)) == 0
		})
		if voters, learners := etcdMembers(t, e); len(voters) != 3 || len(learners) != 0 {
			t.Errorf("after the abandoned join: voters %v, learners %v", voters, learners)
		}
	})
}
