package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// Reasons of the Degraded condition when a membership change is refused
// or fails: the controller does nothing until the spec or the cluster
// changes.
const (
	ReasonTooManyRemovals  = "TooManyRemovals"
	ReasonBelowQuorum      = "RemovalBelowQuorum"
	ReasonAgentAbsent      = "JoinAgentAbsent"
	ReasonMembersUnhealthy = "MembersUnhealthy"
	ReasonMembership       = "MembershipFailed"
)

// Event reasons of membership changes.
const (
	EventLearnerAdded  = "MemberLearnerAdded"
	EventPromoted      = "MemberPromoted"
	EventLeaderMoved   = "MemberLeaderMoved"
	EventMemberRemoved = "MemberRemoved"
	EventRevoking      = "MemberCertificatesRevoking"
	EventMemberGone    = "MemberForgotten"
	EventAPIServer     = "MemberAPIServer"
)

// MemberPoll is how soon the controller looks again while a membership
// change is under way (a learner catching up, an agent starting it).
const MemberPoll = 2 * time.Second

// membership is what one pass of the membership reconcile found.
type membership struct {
	// reason and message are a refusal or failure: Degraded.
	reason, message string
	// notVoting are spec nodes that are not voting members: the prober
	// leaves them out (a joining node serves nothing yet).
	notVoting []string
	// busy: a change is under way; look again after MemberPoll.
	busy bool
}

// memberView is etcd's member list against the spec.
type memberView struct {
	ms []*etcdserverpb.Member
	// voters are the voting members' client URLs: the endpoints of every
	// membership call.
	voters []string
	// learner is a member of the spec being added, with its node.
	learner     *etcdserverpb.Member
	learnerNode cluster.Node
	// joining are spec nodes etcd does not have, in spec order.
	joining []cluster.Node
	// extra are members of no spec node: to remove.
	extra []*etcdserverpb.Member
	// notVoting: see membership.
	notVoting []string
}

func classify(s *cluster.Spec, ms []*etcdserverpb.Member) memberView {
	v := memberView{ms: ms}
	found := map[string]bool{}
	for _, mb := range ms {
		n, ok := nodeOf(s, mb)
		switch {
		case !ok:
			v.extra = append(v.extra, mb)
			continue
		case mb.IsLearner:
			v.learner, v.learnerNode = mb, n
			v.notVoting = append(v.notVoting, n.Name)
		case len(mb.ClientURLs) > 0:
			v.voters = append(v.voters, mb.ClientURLs[0])
		}
		found[n.Name] = true
	}
	for _, n := range s.Nodes {
		if !found[n.Name] {
			v.joining = append(v.joining, n)
			v.notVoting = append(v.notVoting, n.Name)
		}
	}
	return v
}

// servers are the client URLs of the spec's voting members, in spec
// order: what kube-apiserver's --etcd-servers must name. A learner cannot
// serve, and a member leaving the spec must be dropped before it goes.
func (v memberView) servers(s *cluster.Spec) []string {
	var out []string
	for _, n := range s.Nodes {
		if mb := memberOfNode(v.ms, s, n.Name); mb != nil && !mb.IsLearner {
			out = append(out, n.ClientURLs[0])
		}
	}
	return out
}

// members moves etcd's membership one step toward the spec, one member
// at a time, as member add and member remove do: a learner first (added,
// started by its agent, caught up, promoted), else one removal (quorum
// checked, leadership moved away, MemberRemove, its certificates
// revoked), else the first joining node whose agent is ready; with every
// spec node voting, kube-apiserver's --etcd-servers is made to name them
// (apiServerFollows). Every step
// is decided from etcd's member list and the status, so a new leader
// resumes where a killed one stopped.
func (r *clusterReconciler) members(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, cfg *tls.Config) membership {
	ms, err := memberList(ctx, inv.Spec.ClientEndpoints(), cfg)
	if err != nil {
		// The prober says which member does not answer.
		return membership{}
	}
	v := classify(inv.Spec, ms)
	out := membership{notVoting: v.notVoting}
	if err := r.recordMembers(ctx, cl, inv.Spec, v); err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return out
	}
	r.finishRemovals(ctx, cl, inv.Spec, v, &out)
	switch {
	case len(v.extra) > 1:
		var names []string
		for _, mb := range v.extra {
			names = append(names, memberName(cl, mb))
		}
		out.reason = ReasonTooManyRemovals
		out.message = fmt.Sprintf("members %s are not in the spec: removing more than one member at once is refused; put all but one back in the spec", strings.Join(names, ", "))
	case v.learner != nil:
		r.promote(ctx, cl, v, cfg, &out)
	case len(v.extra) == 1:
		r.remove(ctx, cl, inv, v, cfg, &out)
	case len(v.joining) > 0:
		r.addLearner(ctx, cl, inv, v, cfg, &out)
	default:
		// Every spec node votes: the apiserver names them all, last.
		r.apiServerFollows(ctx, cl, inv, v, true, cfg, &out)
	}
	return out
}

// memberName is how the spec named a member: etcd's name, else the
// status entry recorded with its ID (a learner that never started).
func memberName(cl *v1alpha1.EtcdCluster, mb *etcdserverpb.Member) string {
	if mb.Name != "" {
		return mb.Name
	}
	for _, e := range cl.Status.Members {
		if e.ID == hexID(mb.ID) {
			return e.Name
		}
	}
	return "member-" + hexID(mb.ID)
}

// recordMembers writes what etcd's member list says into status.members:
// each spec node joining, learner or voter, each member of no spec node
// removing, with its certificates from status.certificates (kept there
// for the revocation however the removal is interrupted). The agent's
// fields are kept.
func (r *clusterReconciler) recordMembers(ctx context.Context, cl *v1alpha1.EtcdCluster, s *cluster.Spec, v memberView) error {
	return r.updateStatus(ctx, cl, func(st *v1alpha1.EtcdClusterStatus) {
		for _, n := range s.Nodes {
			e, _ := st.Member(n.Name)
			e.Name, e.State = n.Name, v1alpha1.MemberJoining
			if mb := memberOfNode(v.ms, s, n.Name); mb != nil {
				if e.ID != hexID(mb.ID) {
					e.InitialCluster = ""
				}
				e.ID, e.State = hexID(mb.ID), v1alpha1.MemberVoter
				if mb.IsLearner {
					e.State = v1alpha1.MemberLearner
				}
				if len(mb.ClientURLs) > 0 {
					e.ClientURL = mb.ClientURLs[0]
				}
			} else {
				e.ID, e.InitialCluster = "", ""
			}
			st.SetMember(e)
		}
		for _, mb := range v.extra {
			name := memberName(cl, mb)
			e, _ := st.Member(name)
			e.Name, e.ID, e.State = name, hexID(mb.ID), v1alpha1.MemberRemoving
			if len(mb.ClientURLs) > 0 {
				e.ClientURL = mb.ClientURLs[0]
			}
			e.Certificates = ownerCertificates(st, name, e.Certificates)
			st.SetMember(e)
		}
		forgetStale(st, s, v)
	})
}

// forgetStale drops the entries of nodes neither in the spec nor in etcd
// that never became members (a joining node deleted from the spec), and
// marks a voter etcd lost outside the controller as removed, so that its
// certificates are revoked all the same.
func forgetStale(st *v1alpha1.EtcdClusterStatus, s *cluster.Spec, v memberView) {
	for _, e := range slices.Clone(st.Members) {
		_, inSpec := s.Node(e.Name)
		inEtcd := slices.ContainsFunc(v.ms, func(mb *etcdserverpb.Member) bool { return hexID(mb.ID) == e.ID })
		switch {
		case inSpec || inEtcd || e.State == v1alpha1.MemberRemoving || e.State == v1alpha1.MemberRemoved:
		case e.State == v1alpha1.MemberVoter:
			e.State = v1alpha1.MemberRemoved
			st.SetMember(e)
		default:
			st.DropMember(e.Name)
		}
	}
}

func memberOfNode(ms []*etcdserverpb.Member, s *cluster.Spec, name string) *etcdserverpb.Member {
	for _, mb := range ms {
		if n, ok := nodeOf(s, mb); ok && n.Name == name {
			return mb
		}
	}
	return nil
}

// ownerCertificates is have plus every certificate of owner in the status.
func ownerCertificates(st *v1alpha1.EtcdClusterStatus, owner string, have []v1alpha1.MemberCertificate) []v1alpha1.MemberCertificate {
	out := slices.Clone(have)
	for _, c := range st.Certificates {
		if c.Owner != owner || c.Serial == "" {
			continue
		}
		mc := v1alpha1.MemberCertificate{ID: c.ID, Serial: c.Serial, NotAfter: c.NotAfter}
		if !slices.ContainsFunc(out, func(o v1alpha1.MemberCertificate) bool { return o.ID == mc.ID && o.Serial == mc.Serial }) {
			out = append(out, mc)
		}
	}
	return out
}

// setMember changes one entry of status.members.
func (r *clusterReconciler) setMember(ctx context.Context, cl *v1alpha1.EtcdCluster, name string, change func(*v1alpha1.MemberStatus)) error {
	return r.updateStatus(ctx, cl, func(st *v1alpha1.EtcdClusterStatus) {
		e, ok := st.Member(name)
		if !ok {
			e.Name = name
		}
		change(&e)
		st.SetMember(e)
	})
}

// updateStatus applies change to the latest status (read past the cache)
// and writes it when it changed, again on a conflict; cl's status becomes
// the one written.
func (r *clusterReconciler) updateStatus(ctx context.Context, cl *v1alpha1.EtcdCluster, change func(*v1alpha1.EtcdClusterStatus)) error {
	return kube.RetryOnConflict(func() error {
		var ec v1alpha1.EtcdCluster
		if err := r.reader.Get(ctx, client.ObjectKeyFromObject(cl), &ec); err != nil {
			return err
		}
		before := ec.Status.DeepCopy()
		change(&ec.Status)
		if !equality.Semantic.DeepEqual(before, &ec.Status) {
			if err := r.c.Status().Update(ctx, &ec); err != nil {
				return err
			}
		}
		cl.Status = ec.Status
		return nil
	})
}

// memberEvent records a membership step on the EtcdCluster.
func (r *clusterReconciler) memberEvent(cl *v1alpha1.EtcdCluster, reason, text string) {
	r.events.record(cl, nil, corev1.EventTypeNormal, reason, "Membership", text)
}
