package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// A restart grant lives in the status: granting, re-granting and
// reporting it done each wake the agent; other status changes do not.
func TestClusterEventsWakeOnRestartGrants(t *testing.T) {
	n := 0
	h := clusterEvents(func() { n++ })
	at := metav1.NewTime(time.Unix(1000, 0))
	later := metav1.NewTime(time.Unix(2000, 0))
	grant := func(host string, granted *metav1.Time, done *metav1.Time) *v1alpha1.EtcdCluster {
		ec := &v1alpha1.EtcdCluster{}
		ec.Generation = 1
		if host != "" {
			ec.Status.Restart = &v1alpha1.RestartGrant{Host: host, Reason: "r", GrantedAt: granted, DoneAt: done}
		}
		return ec
	}
	for _, c := range []struct {
		name     string
		old, new *v1alpha1.EtcdCluster
		wake     bool
	}{
		{"granted", grant("", nil, nil), grant("etcd-1", &at, nil), true},
		{"granted again", grant("etcd-1", &at, &at), grant("etcd-1", &later, nil), true},
		{"another host", grant("etcd-1", &at, &at), grant("etcd-2", &at, nil), true},
		{"done", grant("etcd-1", &at, nil), grant("etcd-1", &at, &later), true},
		{"cleared", grant("etcd-1", &at, &later), grant("", nil, nil), true},
		{"unchanged", grant("etcd-1", &at, nil), grant("etcd-1", &at, nil), false},
	} {
		before := n
		h.OnUpdate(c.old, c.new)
		if woke := n > before; woke != c.wake {
			t.Errorf("%s: woke %v, want %v", c.name, woke, c.wake)
		}
	}
}
