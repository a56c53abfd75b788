package controller

import (
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// The next CRL lists the published entries and the ready spec serials,
// drops a spec serial a CRL validity past its certificate's notAfter
// (etcd reads the whole CRL on every accepted connection), keeps an
// entry whose notAfter is unknown, and says it changed only when it did:
// the number goes up once per change.
func TestCRLEntriesAddNewDropExpiredAndKeepTheRest(t *testing.T) {
	a := newTestCA(t, "etcd-ca")
	now := time.Now()
	validity := time.Hour
	published, err := a.SignCRL([]ca.Revocation{
		{Serial: big.NewInt(0xabc), Reason: 1, When: now.Add(-time.Hour)},
		{Serial: big.NewInt(0xdef), Reason: 5, When: now.Add(-time.Hour)},
	}, big.NewInt(3), validity, now.Add(-time.Minute))
	must(t, err)
	l, err := pki.ParseCRL(published)
	must(t, err)
	ts := func(d time.Duration) *metav1.Time { m := metav1.NewTime(now.Add(d)); return &m }
	old := v1alpha1.RevocationSpec{Serial: "0D:EF", NotAfter: ts(-validity - time.Minute)}
	fresh := v1alpha1.RevocationSpec{Serial: "0x1F00", Reason: "keyCompromise", NotAfter: ts(time.Hour)}
	if !RevocationExpired(old, validity, now) || RevocationExpired(fresh, validity, now) ||
		RevocationExpired(v1alpha1.RevocationSpec{Serial: "1"}, validity, now) {
		t.Fatal("RevocationExpired: want the old one expired, the fresh one and one without notAfter not")
	}
	serials := func(es []ca.Revocation) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%x", e.Serial))
		}
		return out
	}

	got, changed := CRLEntries(l, []v1alpha1.RevocationSpec{fresh}, []v1alpha1.RevocationSpec{old}, now)
	if want := []string{"abc", "1f00"}; !changed || !slices.Equal(serials(got), want) {
		t.Errorf("entries %v (changed %v), want %v changed", serials(got), changed, want)
	}
	if got[1].Reason != pki.Reasons["keyCompromise"] {
		t.Errorf("reason code %d, want keyCompromise's", got[1].Reason)
	}
	// Published already lists what the spec asks for: nothing to sign.
	if got, changed := CRLEntries(l, []v1alpha1.RevocationSpec{{Serial: "abc"}, {Serial: "DEF"}}, nil, now); changed || len(got) != 2 {
		t.Errorf("a CRL that already lists every serial: changed %v, %d entries", changed, len(got))
	}
}

// A pair still in use waits for its agent; the CA's own serial, a bad
// serial and an unknown reason are refused, never signed into the CRL;
// an enforced entry stays enforced; the certificate of a node the spec
// no longer has (a removed member's) is in use nowhere.
func TestAssessWaitsForTheRenewalAndRefusesBadEntries(t *testing.T) {
	a := newTestCA(t, "etcd-ca")
	cl := &v1alpha1.EtcdCluster{}
	cl.Spec.Nodes = []v1alpha1.NodeSpec{{Name: "n1", IPs: []string{"127.0.0.1"}}}
	s, err := cl.Cluster(cluster.Options{})
	must(t, err)
	inv := pki.New(s)
	cl.Status.Certificates = []v1alpha1.CertificateStatus{{ID: "n1/etcd-peer", Serial: "aa", InEffect: true}, {ID: "gone/etcd-peer", Serial: "ee", InEffect: true}}
	cl.Status.Revocations = []v1alpha1.RevocationStatus{{Serial: "cc", Enforced: true}}
	cl.Spec.Revocations = []v1alpha1.RevocationSpec{
		{Serial: "AA", Target: "n1/etcd-peer"},
		{Serial: fmt.Sprintf("%x", a.Cert.SerialNumber)},
		{Serial: "zz"},
		{Serial: "bb", Reason: "boredom"},
		{Serial: "cc"},
		{Serial: "dd", Target: "n1/etcd-peer"},
		{Serial: "ee", Target: "gone/etcd-peer", Reason: "cessationOfOperation"},
	}
	var states []string
	for _, it := range assess(cl, inv, a, time.Hour, time.Now()) {
		states = append(states, it.state)
	}
	if want := []string{"waiting", "invalid", "invalid", "invalid", "enforced", "ready", "ready"}; !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	_, cond, pending := revocationStatus(assess(cl, inv, a, time.Hour, time.Now()), "")
	if pending != 3 || cond.Status != metav1.ConditionTrue || cond.Reason != ReasonRevocationPending {
		t.Errorf("pending %d, condition %+v; want 3 pending (the invalid ones wait for the spec), Revoking True", pending, cond)
	}
}

// A revocation's notAfter comes from the status (the agents' reports),
// which more identities may write than the spec: a notAfter at or before
// the revocation was requested is not believed (the certificate would
// have been expired already), so it does not take the serial out of the
// CRL: a forged past notAfter cannot make a revocation a no-op.
func TestRevocationWithANotAfterBeforeItsRequestStays(t *testing.T) {
	now := time.Now()
	validity := time.Hour
	ts := func(d time.Duration) *metav1.Time { m := metav1.NewTime(now.Add(d)); return &m }
	forged := v1alpha1.RevocationSpec{Serial: "1f", NotAfter: ts(-2 * validity), RequestedAt: ts(-time.Minute)}
	if RevocationExpired(forged, validity, now) {
		t.Error("a notAfter before the request took the serial out of the CRL")
	}
	honest := v1alpha1.RevocationSpec{Serial: "2f", NotAfter: ts(-2 * validity), RequestedAt: ts(-3 * validity)}
	if !RevocationExpired(honest, validity, now) {
		t.Error("a certificate that expired after its revocation was requested: want it out of the CRL a validity later")
	}
}
