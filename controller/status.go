package controller

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
)

// Condition types and reasons on an EtcdCluster.
const (
	ReasonProven            = "AllMembersProven"
	ReasonMemberUnreachable = "MemberUnreachable"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonNoCA              = "CANotLoaded"
	ReasonTrustNotKept      = "TrustNotKept"
	ReasonHealthy           = "Healthy"
	ReasonRenewalPending    = "RenewalInProgress"
	ReasonRenewalDone       = "RenewalDone"
	ReasonNoRenewal         = "NoRenewalRequested"
	ReasonBadRenewal        = "BadRenewalRequest"
)

// observation is one pass of the prober over a cluster: what went wrong
// before the members could be dialled, the upkeep of its trust, and what
// each member served.
type observation struct {
	specErr, caErr, trustErr error
	proofs                   []MemberProof
	// memberReason and memberMsg are a membership change refused or
	// failed (membership.go).
	memberReason, memberMsg string
}

// problem is the first thing that keeps the cluster from Ready, as a
// condition reason and message; ("", "") when there is none.
func (o observation) problem() (reason, message string) {
	switch {
	case o.specErr != nil:
		return ReasonInvalidSpec, o.specErr.Error()
	case o.caErr != nil:
		return ReasonNoCA, o.caErr.Error()
	case o.memberReason != "":
		return o.memberReason, o.memberMsg
	}
	var down []string
	for _, p := range o.proofs {
		if p.Err != nil {
			down = append(down, fmt.Sprintf("%s did not answer: %v", p.Node, p.Err))
		}
	}
	if len(down) > 0 {
		return ReasonMemberUnreachable, strings.Join(down, "; ")
	}
	if o.trustErr != nil {
		return ReasonTrustNotKept, o.trustErr.Error()
	}
	return "", ""
}

// note is an Event to record for a change the observation made.
type note struct {
	warning      bool
	reason, text string
}

// applyObservation writes one observation into a cluster's status: the
// served serials (through Observe, so an agent's fresher report is never
// overwritten), the three conditions and observedGeneration. It returns
// an Event for every served serial and condition that changed.
func applyObservation(cl *v1alpha1.EtcdCluster, inv *pki.Inventory, o observation, now time.Time) []note {
	st := &cl.Status
	var notes []note
	at := metav1.NewTime(now)
	var changed []string
	for _, p := range o.proofs {
		for _, s := range p.Served {
			old, had := st.Certificate(s.ID)
			notAfter := metav1.NewTime(s.NotAfter)
			st.Observe(v1alpha1.CertificateStatus{ID: s.ID, Owner: s.Owner, Serial: s.Serial, NotAfter: &notAfter,
				InEffect: true, ProvenAt: &at, ProvenBy: v1alpha1.ProvenByController})
			if !had || old.Serial != s.Serial {
				changed = append(changed, fmt.Sprintf("%s %s (was %s)", s.ID, pki.ShortSerial(s.Serial), pki.ShortSerial(old.Serial)))
			}
		}
	}
	if len(changed) > 0 {
		notes = append(notes, note{reason: EventProven, text: "serving on the wire: " + strings.Join(changed, ", ")})
	}
	reason, msg := o.problem()
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonProven,
		Message: "every member's client and peer ports serve a certificate from the CA"}
	degraded := metav1.Condition{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: ReasonHealthy, Message: "every member answered"}
	if reason != "" {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reason, msg
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, reason, msg
	}
	for _, c := range []metav1.Condition{ready, degraded, renewing(cl, inv)} {
		c.ObservedGeneration = cl.Generation
		if meta.SetStatusCondition(&st.Conditions, c) {
			notes = append(notes, note{warning: c.Type == v1alpha1.ConditionDegraded && c.Status == metav1.ConditionTrue,
				reason: conditionEventReason(c.Type, c.Status == metav1.ConditionTrue), text: fmt.Sprintf("%s is %s (%s): %s", c.Type, c.Status, c.Reason, c.Message)})
		}
	}
	st.ObservedGeneration = cl.Generation
	return notes
}

// renewing is the Renewing condition: True while a renewal requested on
// the EtcdCluster (etcdpki rotate --kubeconfig) names a certificate whose
// entry has no RenewedAt at or after the request, or is not in effect.
func renewing(cl *v1alpha1.EtcdCluster, inv *pki.Inventory) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: ReasonNoRenewal, Message: "no renewal requested"}
	req, err := cl.Requested()
	switch {
	case err != nil:
		c.Reason, c.Message = ReasonBadRenewal, err.Error()
		return c
	case req.At.IsZero():
		return c
	}
	picked, unknown := inv.Targets, []string(nil)
	if req.Targets != nil {
		picked, unknown = pki.Select(inv.Targets, req.Targets)
	}
	if len(unknown) > 0 {
		c.Reason, c.Message = ReasonBadRenewal, fmt.Sprintf("annotation %s names %s: not in the spec", v1alpha1.AnnotationRenewTargets, strings.Join(unknown, ", "))
		return c
	}
	at := req.At.UTC().Format(time.RFC3339Nano)
	var waiting []string
	for _, t := range picked {
		e, ok := cl.Status.Certificate(t.ID)
		if !ok || !e.InEffect || e.RenewedAt == nil || e.RenewedAt.Time.Before(req.At) {
			waiting = append(waiting, t.ID)
		}
	}
	if len(waiting) == 0 {
		c.Reason, c.Message = ReasonRenewalDone, fmt.Sprintf("every certificate requested at %s is renewed and in effect", at)
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, ReasonRenewalPending
	c.Message = fmt.Sprintf("requested at %s; waiting for %s", at, strings.Join(waiting, ", "))
	return c
}
