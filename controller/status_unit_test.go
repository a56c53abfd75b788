package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

func served(node string, serial string) MemberProof {
	return MemberProof{Node: node, Served: []Served{
		{ID: node + "/etcd-server", Owner: node, Serial: serial + "1", NotAfter: time.Now().Add(time.Hour)},
		{ID: node + "/etcd-peer", Owner: node, Serial: serial + "2", NotAfter: time.Now().Add(time.Hour)},
	}}
}

func TestApplyObservationWritesSerialsAndConditions(t *testing.T) {
	inv := testInventory(t)
	cl := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: "etcd-test", Generation: 3}}
	now := time.Now()
	all := observation{proofs: []MemberProof{served("etcd-node-1", "a"), served("etcd-node-2", "b"), served("etcd-node-3", "c")}}

	notes := applyObservation(cl, inv, all, now)
	if !meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionReady) || meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionDegraded) {
		t.Errorf("conditions %+v, want Ready and not Degraded", cl.Status.Conditions)
	}
	if cl.Status.ObservedGeneration != 3 || meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionReady).ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d", cl.Status.ObservedGeneration)
	}
	if e, ok := cl.Status.Certificate("etcd-node-2/etcd-peer"); !ok || e.Serial != "b2" || !e.InEffect || e.ProvenBy != v1alpha1.ProvenByController {
		t.Errorf("etcd-node-2/etcd-peer: %+v", e)
	}
	if len(notes) != 1+3 || notes[0].reason != EventProven || strings.Count(notes[0].text, "(was (none))") != 6 {
		t.Errorf("%d notes, want the six new serials in one and one per condition: %+v", len(notes), notes)
	}
	if notes[1].reason != "Ready" || notes[2].reason != "NotDegraded" || notes[3].reason != "NotRenewing" {
		t.Errorf("condition Event reasons %q %q %q", notes[1].reason, notes[2].reason, notes[3].reason)
	}
	if again := applyObservation(cl, inv, all, now.Add(time.Second)); len(again) != 0 {
		t.Errorf("nothing changed, yet %+v", again)
	}

	down := all
	down.proofs = append([]MemberProof(nil), all.proofs...)
	down.proofs[1] = MemberProof{Node: "etcd-node-2", Err: errors.New("client port 127.0.0.2:2379: connection refused")}
	notes = applyObservation(cl, inv, down, now.Add(2*time.Second))
	d := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionDegraded)
	if d.Status != metav1.ConditionTrue || d.Reason != ReasonMemberUnreachable || d.Message != "etcd-node-2 did not answer: client port 127.0.0.2:2379: connection refused" {
		t.Errorf("Degraded: %+v", d)
	}
	if meta.IsStatusConditionTrue(cl.Status.Conditions, v1alpha1.ConditionReady) {
		t.Error("Ready with a member down")
	}
	if len(notes) != 2 || notes[0].reason != "NotReady" || notes[1].reason != "Degraded" || !notes[1].warning {
		t.Errorf("notes %+v, want Ready and Degraded changed, Degraded a warning", notes)
	}
	if e, _ := cl.Status.Certificate("etcd-node-2/etcd-peer"); e.Serial != "b2" {
		t.Errorf("a member that did not answer lost its last proof: %+v", e)
	}
}

func TestRenewingFollowsTheRequest(t *testing.T) {
	inv := testInventory(t)
	at := time.Now().Add(-time.Minute)
	cl := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: "etcd-test"}}
	if c := renewing(cl, inv); c.Status != metav1.ConditionFalse || c.Reason != ReasonNoRenewal {
		t.Errorf("no request: %+v", c)
	}
	cl.Request(at, []string{"etcd-node-1"})
	c := renewing(cl, inv)
	if c.Status != metav1.ConditionTrue || !strings.HasSuffix(c.Message, "waiting for etcd-node-1/etcd-server, etcd-node-1/etcd-peer, etcd-node-1/etcd-healthcheck-client") {
		t.Errorf("requested: %+v", c)
	}
	later := metav1.NewTime(at.Add(time.Second))
	for _, id := range []string{"etcd-node-1/etcd-server", "etcd-node-1/etcd-peer", "etcd-node-1/etcd-healthcheck-client"} {
		cl.Status.Observe(v1alpha1.CertificateStatus{ID: id, InEffect: true, ProvenAt: &later, RenewedAt: &later, ProvenBy: v1alpha1.ProvenByAgent})
	}
	if c := renewing(cl, inv); c.Status != metav1.ConditionFalse || c.Reason != ReasonRenewalDone {
		t.Errorf("renewed: %+v", c)
	}
	cl.Request(at, []string{"etcd-node-9"})
	if c := renewing(cl, inv); c.Reason != ReasonBadRenewal || !strings.Contains(c.Message, "etcd-node-9") {
		t.Errorf("unknown target: %+v", c)
	}
	cl.Annotations[v1alpha1.AnnotationRenewRequestedAt] = "yesterday"
	if c := renewing(cl, inv); c.Reason != ReasonBadRenewal || !strings.Contains(c.Message, `"yesterday"`) {
		t.Errorf("bad time: %+v", c)
	}
}
