package agent

import (
	"testing"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// The informer's first list delivers the EtcdCluster as an Add: it must
// ask for a pass, or a request stamped after the agent's first read and
// before that list is never acted on. A status-only update does not.
func TestClusterEventsWakeOnTheFirstListAndOnRequests(t *testing.T) {
	n := 0
	h := clusterEvents(func() { n++ })
	ec := &v1alpha1.EtcdCluster{}
	ec.Generation = 1
	h.OnAdd(ec, true)
	if n != 1 {
		t.Fatalf("the first list's Add asked for %d passes, want 1", n)
	}
	st := ec.DeepCopy()
	st.Status.ObservedGeneration = 1
	h.OnUpdate(ec, st)
	if n != 1 {
		t.Errorf("a status-only update asked for a pass")
	}
	req := ec.DeepCopy()
	req.Request(req.CreationTimestamp.Time, nil)
	h.OnUpdate(ec, req)
	if n != 2 {
		t.Errorf("a renewal request asked for %d passes in all, want 2", n)
	}
}
