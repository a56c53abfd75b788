package controller

import (
	"context"
	"crypto/tls"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// addLearner adds the first joining node as a learner, once its agent
// has its certificates on its host and every voting member is healthy,
// and records the initial-cluster etcd returned for the agent to write.
func (r *clusterReconciler) addLearner(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, v memberView, cfg *tls.Config, out *membership) {
	n := v.joining[0]
	e, _ := cl.Status.Member(n.Name)
	if e.AgentReadyAt == nil {
		out.reason = ReasonAgentAbsent
		out.message = fmt.Sprintf("node %s is in the spec but not a member of etcd, and its agent has not reported ready: start `etcdpki agent --node %s` on its host", n.Name, n.Name)
		return
	}
	// The apiserver's servers as they are before the join, recorded (or
	// brought in line) first: the join's last step compares with them.
	if !r.apiServerFollows(ctx, cl, inv, v, true, cfg, out) {
		return
	}
	if h := health(ctx, v.ms, cfg, false); !h.Healthy() {
		out.reason = ReasonMembersUnhealthy
		out.message = fmt.Sprintf("refusing to add %s: %s", n.Name, unhealthy(h))
		return
	}
	out.busy = true
	var resp *clientv3.MemberAddResponse
	err := memberOp(ctx, v.voters, cfg, func(ctx context.Context, cli *clientv3.Client) (err error) {
		resp, err = cli.MemberAddAsLearner(ctx, n.PeerURLs)
		return err
	})
	if err != nil {
		r.memberFailed(ctx, cl, n.Name, fmt.Errorf("etcd member add --learner %s: %w", n.PeerURLs[0], err), out)
		return
	}
	ic, err := initialCluster(resp.Members, resp.Member.ID, n.Name)
	if err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return
	}
	id := hexID(resp.Member.ID)
	err = r.setMember(ctx, cl, n.Name, func(e *v1alpha1.MemberStatus) {
		e.ID, e.State, e.InitialCluster = id, v1alpha1.MemberLearner, ic
		e.Message = "added as learner; waiting for its agent to start it"
	})
	if err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return
	}
	r.memberEvent(cl, EventLearnerAdded, fmt.Sprintf("%s added as learner %s (%s); initial-cluster %s", n.Name, id, n.PeerURLs[0], ic))
}

// promote promotes the learner once its agent started it and it caught
// up with the leader; until then it looks again every MemberPoll. A
// learner added by a replica killed before it wrote the status gets its
// initial-cluster recorded here.
func (r *clusterReconciler) promote(ctx context.Context, cl *v1alpha1.EtcdCluster, v memberView, cfg *tls.Config, out *membership) {
	mb, n := v.learner, v.learnerNode
	id := hexID(mb.ID)
	out.busy = true
	e, _ := cl.Status.Member(n.Name)
	if e.InitialCluster == "" {
		ic, err := initialCluster(v.ms, mb.ID, n.Name)
		if err == nil {
			err = r.setMember(ctx, cl, n.Name, func(e *v1alpha1.MemberStatus) {
				e.ID, e.State, e.InitialCluster, e.Message = id, v1alpha1.MemberLearner, ic, "learner found in etcd; waiting for its agent to start it"
			})
		}
		if err != nil {
			out.reason, out.message = ReasonMembership, err.Error()
		}
		return
	}
	if e.StartedID != id && mb.Name == "" {
		return // its agent has not started it yet
	}
	behind, err := learnerBehind(ctx, v, cfg)
	if err != nil || behind > runner.CaughtUpSlack {
		msg := fmt.Sprintf("learner catching up: %d raft entries behind the leader", behind)
		if err != nil {
			msg = fmt.Sprintf("learner not answering yet: %v", err)
		}
		_ = r.setMember(ctx, cl, n.Name, func(e *v1alpha1.MemberStatus) { e.Message = msg })
		return
	}
	err = memberOp(ctx, v.voters, cfg, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.MemberPromote(ctx, mb.ID)
		return err
	})
	if err != nil {
		r.memberFailed(ctx, cl, n.Name, fmt.Errorf("etcd member promote %s: %w", id, err), out)
		return
	}
	if err := r.setMember(ctx, cl, n.Name, func(e *v1alpha1.MemberStatus) { e.State, e.Message = v1alpha1.MemberVoter, "promoted: a voting member" }); err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return
	}
	r.memberEvent(cl, EventPromoted, fmt.Sprintf("%s (%s) caught up and was promoted: a voting member", n.Name, id))
}

// learnerBehind is how many raft entries the learner trails the leader:
// the leader is asked first, so entries committed while the learner is
// asked do not count as its lag.
func learnerBehind(ctx context.Context, v memberView, cfg *tls.Config) (uint64, error) {
	h := health(ctx, v.ms, cfg, false)
	l, ok := h.LeaderResult()
	if !ok {
		return 0, fmt.Errorf("no agreed leader among the voting members")
	}
	if len(v.learner.ClientURLs) == 0 {
		return 0, fmt.Errorf("the learner has not published its client URL yet")
	}
	url := v.learner.ClientURLs[0]
	var applied uint64
	err := memberOp(ctx, []string{url}, cfg, func(ctx context.Context, cli *clientv3.Client) error {
		st, err := cli.Status(ctx, url)
		if err == nil {
			applied = st.RaftAppliedIndex
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if applied >= l.Status.RaftIndex {
		return 0, nil
	}
	return l.Status.RaftIndex - applied, nil
}

// memberFailed records a failed etcd call on the member's entry: one
// etcd refuses for a moment (strict reconfiguration, a learner not yet
// in sync) is tried again at the next pass; any other is Degraded.
func (r *clusterReconciler) memberFailed(ctx context.Context, cl *v1alpha1.EtcdCluster, name string, err error, out *membership) {
	_ = r.setMember(ctx, cl, name, func(e *v1alpha1.MemberStatus) { e.Message = err.Error() })
	if !transient(err) {
		out.reason, out.message = ReasonMembership, err.Error()
	}
}
