package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// RevocationReason is the RFC 5280 reason a removed member's
// certificates are revoked with.
const RevocationReason = "cessationOfOperation"

// remove takes the one member of no spec node out of etcd: refused when
// the voting members left would have no healthy quorum; the apiserver
// first (apiServerFollows: its --etcd-servers without the member),
// leadership handed away if it leads, then
// MemberRemove. Each call is one step; the next pass does the next.
func (r *clusterReconciler) remove(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, v memberView, cfg *tls.Config, out *membership) {
	x := v.extra[0]
	name := memberName(cl, x)
	rest := slices.DeleteFunc(slices.Clone(v.ms), func(mb *etcdserverpb.Member) bool { return mb.ID == x.ID })
	if !x.IsLearner {
		h := health(ctx, rest, cfg, false)
		voters, healthy := 0, 0
		for _, mb := range rest {
			if !mb.IsLearner {
				voters++
			}
		}
		for _, e := range h.Endpoints {
			if e.Healthy {
				healthy++
			}
		}
		if need := voters/2 + 1; voters == 0 || healthy < need {
			out.reason = ReasonBelowQuorum
			out.message = fmt.Sprintf("refusing to remove %s: %d voting members would remain with %d healthy; quorum needs %d, so the cluster would stop serving (%s)", name, voters, healthy, need, unhealthy(h))
			return
		}
	}
	out.busy = true
	if !r.apiServerFollows(ctx, cl, inv, v, false, cfg, out) {
		return
	}
	if moved, err := r.moveLeader(ctx, cl, x, rest, cfg); err != nil || moved {
		if err != nil {
			r.memberFailed(ctx, cl, name, err, out)
		}
		return
	}
	err := memberOp(ctx, clientURLs(rest), cfg, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.MemberRemove(ctx, x.ID)
		if err != nil && strings.Contains(err.Error(), rpctypes.ErrMemberNotFound.Error()) {
			return nil
		}
		return err
	})
	if err != nil {
		r.memberFailed(ctx, cl, name, fmt.Errorf("etcd member remove %s: %w", hexID(x.ID), err), out)
		return
	}
	_ = r.setMember(ctx, cl, name, func(e *v1alpha1.MemberStatus) {
		e.State, e.Message = v1alpha1.MemberRemoved, "removed from etcd; its certificates are being revoked"
	})
	r.memberEvent(cl, EventMemberRemoved, fmt.Sprintf("member %s (%s) removed from etcd", name, hexID(x.ID)))
}

// moveLeader hands leadership from x to the most caught-up healthy
// remaining voter when x leads: one leader change at a moment of our
// choosing instead of an election after MemberRemove. moved says it did
// (or that it leads and has nobody to hand over to yet): the removal
// goes on at the next pass.
func (r *clusterReconciler) moveLeader(ctx context.Context, cl *v1alpha1.EtcdCluster, x *etcdserverpb.Member, rest []*etcdserverpb.Member, cfg *tls.Config) (bool, error) {
	h := health(ctx, append(slices.Clone(rest), x), cfg, false)
	if h.Leader != probe.ID(x.ID) || len(x.ClientURLs) == 0 {
		return false, nil
	}
	// The first caught-up member in the order of rest (etcd's, which
	// lists the longest-standing members first): a transfer to a member
	// that is behind waits for it, and meanwhile the leader drops every
	// proposal, so requests in flight time out.
	var to probe.ID
	for _, e := range h.Endpoints {
		if e.Healthy && e.Status != nil && e.Status.MemberID != probe.ID(x.ID) && h.CaughtUp(e.Status.MemberID, runner.CaughtUpSlack) {
			to = e.Status.MemberID
			break
		}
	}
	if to == 0 {
		// Looked at again at the next pass.
		_ = r.setMember(ctx, cl, memberName(cl, x), func(e *v1alpha1.MemberStatus) {
			e.Message = "leads; no healthy, caught-up remaining member to hand leadership to yet"
		})
		return true, nil
	}
	at := metav1.NowMicro()
	if err := r.setMember(ctx, cl, memberName(cl, x), func(e *v1alpha1.MemberStatus) { e.HandOffAt = &at }); err != nil {
		return false, err
	}
	err := memberOp(ctx, x.ClientURLs[:1], cfg, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.MoveLeader(ctx, uint64(to))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("etcd move-leader from %s to %s: %w", hexID(x.ID), to, err)
	}
	r.memberEvent(cl, EventLeaderMoved, fmt.Sprintf("%s led: leadership moved to member %s before its removal", memberName(cl, x), to))
	return true, nil
}

// finishRemovals ends the removal of every member etcd no longer has:
// its certificates (recorded in its entry) go out of status.certificates
// and into spec.revocations (reason cessationOfOperation), whose
// reconciler renews nothing for them (no spec node holds them), signs the
// CRL and proves every member refuses them; once every one is enforced,
// the entry goes.
func (r *clusterReconciler) finishRemovals(ctx context.Context, cl *v1alpha1.EtcdCluster, s *cluster.Spec, v memberView, out *membership) {
	for _, e := range slices.Clone(cl.Status.Members) {
		if _, inSpec := s.Node(e.Name); inSpec || (e.State != v1alpha1.MemberRemoving && e.State != v1alpha1.MemberRemoved) {
			continue
		}
		if slices.ContainsFunc(v.ms, func(mb *etcdserverpb.Member) bool { return hexID(mb.ID) == e.ID }) {
			continue
		}
		if err := r.revokeRemoved(ctx, cl, e.Name); err != nil {
			out.reason, out.message = ReasonMembership, err.Error()
			return
		}
	}
}

// revokeRemoved is finishRemovals for one member.
func (r *clusterReconciler) revokeRemoved(ctx context.Context, cl *v1alpha1.EtcdCluster, name string) error {
	var certs []v1alpha1.MemberCertificate
	err := r.updateStatus(ctx, cl, func(st *v1alpha1.EtcdClusterStatus) {
		e, _ := st.Member(name)
		e.Certificates = ownerCertificates(st, name, e.Certificates)
		e.State = v1alpha1.MemberRemoved
		certs = e.Certificates
		st.Certificates = slices.DeleteFunc(st.Certificates, func(c v1alpha1.CertificateStatus) bool { return c.Owner == name })
		enforced := 0
		for _, c := range certs {
			if slices.ContainsFunc(st.Revocations, func(rv v1alpha1.RevocationStatus) bool { return rv.Serial == c.Serial && rv.Enforced }) {
				enforced++
			}
		}
		e.Message = fmt.Sprintf("removed from etcd; %d of its %d certificates proven refused", enforced, len(certs))
		st.SetMember(e)
		if enforced == len(certs) {
			st.DropMember(name)
		}
	})
	if err != nil {
		return err
	}
	added, err := r.addRevocations(ctx, cl, certs)
	if err != nil {
		return err
	}
	if len(added) > 0 {
		r.memberEvent(cl, EventRevoking, fmt.Sprintf("%s's certificates added to spec.revocations (%s): %s", name, RevocationReason, strings.Join(added, ", ")))
	}
	if _, still := cl.Status.Member(name); !still {
		r.memberEvent(cl, EventMemberGone, fmt.Sprintf("%s removed and every certificate of it proven refused", name))
	}
	return nil
}

// addRevocations appends to spec.revocations the certificates it lacks.
func (r *clusterReconciler) addRevocations(ctx context.Context, cl *v1alpha1.EtcdCluster, certs []v1alpha1.MemberCertificate) ([]string, error) {
	var added []string
	at := metav1.Now()
	err := kube.UpdateField(ctx, r.reader, r.c, client.ObjectKeyFromObject(cl), []string{"spec", "revocations"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
		added = nil
		list := ec.Spec.Revocations
		for _, c := range certs {
			if !slices.ContainsFunc(list, func(rv v1alpha1.RevocationSpec) bool { return strings.EqualFold(rv.Serial, c.Serial) }) {
				list = append(list, v1alpha1.RevocationSpec{Serial: c.Serial, Reason: RevocationReason, Target: c.ID, NotAfter: c.NotAfter, RequestedAt: &at})
				added = append(added, c.ID+" "+c.Serial)
			}
		}
		return list, len(added) > 0, nil
	})
	return added, err
}

// unhealthy names the members a probe found unhealthy.
func unhealthy(h *probe.Cluster) string {
	var bad []string
	for _, e := range h.Endpoints {
		if !e.Healthy {
			bad = append(bad, fmt.Sprintf("%s: %v", e.Endpoint, e.Err()))
		}
	}
	if len(bad) == 0 {
		return "every member answered"
	}
	return strings.Join(bad, "; ")
}

func clientURLs(ms []*etcdserverpb.Member) []string {
	var out []string
	for _, mb := range ms {
		if !mb.IsLearner && len(mb.ClientURLs) > 0 {
			out = append(out, mb.ClientURLs[0])
		}
	}
	return out
}
