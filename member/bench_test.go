package member_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
)

// BenchmarkMember measures membership changes on a cluster run from
// etcd.env, under the load client of BenchmarkRoll, each iteration
// leaving 3 members as it found them:
//
//   - add: member add of a 4th member (a node removed before, its data
//     directory wiped, as a replacement host), with the learner's
//     catch-up reported apart;
//   - remove-follower: member remove of a follower;
//   - remove-leader: member remove of the leader (one hand-off), then
//     its replacement is added back (counted under add).
//
// The apiserver stand-in (the load client) uses the members that stay:
// for a removal it is pointed at the others first, as member remove's
// first step does to the real apiserver. Reported per operation: time,
// failed requests and leader changes (raft term increments). Goals (not
// asserted): add and remove-follower 0 failed and 0 leader changes;
// remove-leader exactly 1 leader change.
//
//	go test -run '^$' -bench Member -benchtime 3x ./member/
func BenchmarkMember(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{FromEnv: true})
	ctx := context.Background()
	var spare []etcdtest.SpecNode
	add := func() (took, catchUp time.Duration, fails, changes int64) {
		// The apiserver stand-in uses the members there are: the new one
		// serves only once added.
		term := livetest.RaftTerm(b, c)
		ld := livetest.StartLoad(b, c)
		var m *etcdtest.Member
		if len(spare) == 0 {
			m = c.AddNode(b, nil)
		} else {
			n := spare[0]
			spare = spare[1:]
			m = c.ReAddNode(b, n)
			if err := os.RemoveAll(m.DataDir); err != nil {
				b.Fatal(err)
			}
		}
		var out bytes.Buffer
		res, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m.Name, Out: &out})
		st := ld.Stop()
		if err != nil {
			b.Fatalf("member add %s: %v\n%s", m.Name, err, out.String())
		}
		return res.Took, res.CatchUp, st.Fails, int64(livetest.RaftTerm(b, c) - term)
	}
	remove := func(name string) (took time.Duration, fails, changes int64) {
		term := livetest.RaftTerm(b, c)
		n, m := c.RemoveNode(b, name)
		spare = append(spare, n)
		ld := livetest.StartLoad(b, c)
		var out bytes.Buffer
		res, err := member.Remove(ctx, pki.New(c.Spec), member.Options{Name: name, Out: &out})
		st := ld.Stop()
		if err != nil {
			b.Fatalf("member remove %s: %v\n%s", name, err, out.String())
		}
		exited, _ := m.Exited()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			b.Fatalf("removed member %s still runs", name)
		}
		return res.Took, st.Fails, int64(livetest.RaftTerm(b, c) - term)
	}
	var adds, addFails, addChanges, rfFails, rfChanges, rlFails, rlChanges int64
	var addTook, catchUp, rfTook, rlTook time.Duration
	for b.Loop() {
		took, cu, f, ch := add()
		adds, addTook, catchUp, addFails, addChanges = adds+1, addTook+took, catchUp+cu, addFails+f, addChanges+ch
		leader := leaderName(b, c)
		i := slices.IndexFunc(c.Members, func(m *etcdtest.Member) bool { return m.Name != leader })
		took, f, ch = remove(c.Members[i].Name)
		rfTook, rfFails, rfChanges = rfTook+took, rfFails+f, rfChanges+ch
		took, f, ch = remove(leaderName(b, c))
		rlTook, rlFails, rlChanges = rlTook+took, rlFails+f, rlChanges+ch
		took, cu, f, ch = add()
		adds, addTook, catchUp, addFails, addChanges = adds+1, addTook+took, catchUp+cu, addFails+f, addChanges+ch
	}
	n, a := float64(b.N), float64(adds)
	b.ReportMetric(addTook.Seconds()/a, "s-add/op")
	b.ReportMetric(catchUp.Seconds()/a, "s-add-catchup/op")
	b.ReportMetric(float64(addFails)/a, "add-failed-requests/op")
	b.ReportMetric(float64(addChanges)/a, "add-leader-changes/op")
	b.ReportMetric(rfTook.Seconds()/n, "s-remove-follower/op")
	b.ReportMetric(float64(rfFails)/n, "remove-follower-failed-requests/op")
	b.ReportMetric(float64(rfChanges)/n, "remove-follower-leader-changes/op")
	b.ReportMetric(rlTook.Seconds()/n, "s-remove-leader/op")
	b.ReportMetric(float64(rlFails)/n, "remove-leader-failed-requests/op")
	b.ReportMetric(float64(rlChanges)/n, "remove-leader-leader-changes/op")
}
