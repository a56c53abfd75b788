package request

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
)

// A certificate counts as done only when its status shows it renewed at
// or after the request (both in whole seconds, as the API carries
// RenewedAt) and in effect; otherwise why says which of the two is
// missing, with the agent's message.
func TestRenewedNeedsBothTheRenewalAndTheProof(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 0, 5, 0, time.UTC)
	ts := func(d time.Duration) *metav1.Time { m := metav1.NewTime(at.Add(d)); return &m }
	ec := &v1alpha1.EtcdCluster{}
	ec.Status.Certificates = []v1alpha1.CertificateStatus{
		{ID: "n1/etcd-server", InEffect: true, RenewedAt: ts(0)},
		{ID: "n1/etcd-peer", InEffect: true, RenewedAt: ts(-time.Second)},
		{ID: "n2/etcd-server", InEffect: false, RenewedAt: ts(2 * time.Second), Message: "peer port serves the old serial"},
		{ID: "n2/etcd-peer", InEffect: true},
	}
	for _, c := range []struct {
		id   string
		done bool
		why  string
	}{
		{"n1/etcd-server", true, ""},
		{"n1/etcd-peer", false, "n1/etcd-peer: not renewed since the request (last renewed 2026-12-07T03:00:04Z)"},
		{"n2/etcd-server", false, "n2/etcd-server: renewed 2026-12-07T03:00:07Z but not proven in effect: peer port serves the old serial"},
		{"n2/etcd-peer", false, "n2/etcd-peer: not renewed since the request"},
		{"n3/etcd-server", false, "n3/etcd-server: no status reported"},
	} {
		if _, done := renewed(ec, c.id, at); done != c.done {
			t.Errorf("%s: renewed = %v, want %v", c.id, done, c.done)
		}
		if !c.done && why(ec, c.id, at) != c.why {
			t.Errorf("why(%s) = %q, want %q", c.id, why(ec, c.id, at), c.why)
		}
	}
	e := &TimeoutError{Timeout: time.Minute, Missing: []string{"a: x", "b: y"}}
	if !strings.Contains(e.Error(), "after 1m0s: a: x; b: y") {
		t.Errorf("TimeoutError = %q", e.Error())
	}
}

// A renewal finished a moment before a new request has a RenewedAt
// (rounded up to the second by its agent) at or after the request's
// whole second: the request waits until its clock is past it, or it
// would read as answered at once; far ahead is a clock skew, an error.
func TestSettleWaitsPastTheLastRenewal(t *testing.T) {
	renewedAt := time.Date(2026, 12, 7, 3, 0, 5, 0, time.UTC) // agent: 03:00:04.2 rounded up
	m := metav1.NewTime(renewedAt)
	ec := &v1alpha1.EtcdCluster{}
	ec.Status.Certificates = []v1alpha1.CertificateStatus{{ID: "n1/etcd-server", InEffect: true, RenewedAt: &m}, {ID: "n2/etcd-server"}}
	picked := []pki.Target{{ID: "n1/etcd-server"}, {ID: "n2/etcd-server"}}
	now := renewedAt.Add(-800 * time.Millisecond) // 03:00:04.2 on this host
	d, who, _ := settleWait(ec, picked, now)
	if who != "n1/etcd-server" || d != 1800*time.Millisecond {
		t.Errorf("settleWait = %s, %q; want 1.8s for n1/etcd-server", d, who)
	}
	// After the wait the stamp (whole seconds) is past the renewal.
	if stamp := now.Add(d).Truncate(time.Second); !stamp.After(renewedAt) {
		t.Errorf("stamp %s after the wait is not past RenewedAt %s", stamp, renewedAt)
	}
	if d, _, _ := settleWait(ec, picked, renewedAt.Add(time.Second)); d > 0 {
		t.Errorf("a second past the renewal: wait %s, want none", d)
	}
	if d, _, _ := settleWait(ec, picked[1:], now); d != 0 {
		t.Errorf("no RenewedAt among the picked: wait %s, want none", d)
	}
	skewed := renewedAt.Add(-time.Minute)
	err := settle(context.Background(), ec, picked, func() time.Time { return skewed })
	if err == nil || !strings.Contains(err.Error(), "clocks disagree") || !strings.Contains(err.Error(), "n1/etcd-server") {
		t.Errorf("an agent clock a minute ahead: err = %v, want the skew named", err)
	}
}
