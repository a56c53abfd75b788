package rotate_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
)

// BenchmarkRoll puts the three ways of putting renewed certificates into
// effect side by side, on one 3-member cluster under client load (the
// kube-apiserver stand-in of the acceptance tests, ~400 requests/s across
// all three endpoints), each rotation renewing every certificate:
//
//   - auto: rotate's default. No member restarts; fresh handshakes prove
//     the new certificates in effect.
//   - always: rotate --restart=always, the rolling restart with its
//     leadership hand-off and health gates.
//   - naive: restart each member in turn, in spec order, waiting for it
//     to answer a linearizable read, with no hand-off (etcd's own transfer
//     on a graceful stop) and no gates.
//
// Reported per rotation: total time, failed client requests, leader
// changes (raft term increments) and the worst client request (of the
// worst and of the median rotation); for auto also the proof of the
// three members (ms-proof/op), for always the floor (sum of each
// member's restart-to-healthy time), the ratio to it and the failures
// inside the leadership hand-off. Goals (not asserted): auto 0 failed
// requests, 0 leader changes, a 3-member proof within 150 ms on loopback.
//
//	go test -run '^$' -bench Roll -benchtime 20x ./rotate/
func BenchmarkRoll(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) { f.Certs.Validity = "2h" }})
	b.Run("auto", func(b *testing.B) {
		var worsts []time.Duration
		var fails, changes, restarts int64
		var total, proof time.Duration
		for b.Loop() {
			term := livetest.RaftTerm(b, c)
			ld := livetest.StartLoad(b, c)
			var out bytes.Buffer
			res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
			st := ld.Stop()
			if err != nil {
				b.Fatalf("rotate: %v\n%s", err, out.String())
			}
			if len(res.Proofs) != len(c.Members) {
				b.Fatalf("proved %d members, want %d:\n%s", len(res.Proofs), len(c.Members), out.String())
			}
			total += res.Took
			proof += res.ProofTime()
			restarts += int64(len(res.Members))
			worsts = append(worsts, st.Worst)
			fails += st.Fails
			changes += int64(livetest.RaftTerm(b, c) - term)
		}
		n := float64(b.N)
		b.ReportMetric(total.Seconds()/n, "s-total/op")
		b.ReportMetric(float64(proof.Milliseconds())/n, "ms-proof/op")
		livetest.ReportWorst(b, worsts)
		b.ReportMetric(float64(fails)/n, "failed-requests/op")
		b.ReportMetric(float64(changes)/n, "leader-changes/op")
		b.ReportMetric(float64(restarts)/n, "restarts/op")
	})
	b.Run("always", func(b *testing.B) {
		var worsts []time.Duration
		var fails, changes, handOffDrops int64
		var total, floor time.Duration
		for b.Loop() {
			term := livetest.RaftTerm(b, c)
			ld := livetest.StartLoad(b, c)
			var out bytes.Buffer
			res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: &out})
			st := ld.Stop()
			if err != nil {
				b.Fatalf("rotate: %v\n%s", err, out.String())
			}
			total += res.Took
			floor += res.Floor()
			dropped, _ := livetest.Classify(windows(res.HandOffs), st.Failures)
			handOffDrops += int64(len(dropped))
			worsts = append(worsts, st.Worst)
			fails += st.Fails
			changes += int64(livetest.RaftTerm(b, c) - term)
		}
		n := float64(b.N)
		b.ReportMetric(total.Seconds()/n, "s-total/op")
		b.ReportMetric(floor.Seconds()/n, "s-floor/op")
		b.ReportMetric(float64(total)/float64(floor), "total/floor")
		livetest.ReportWorst(b, worsts)
		b.ReportMetric(float64(fails)/n, "failed-requests/op")
		b.ReportMetric(float64(handOffDrops)/n, "failed-in-hand-off/op")
		b.ReportMetric(float64(changes)/n, "leader-changes/op")
	})
	b.Run("naive", func(b *testing.B) {
		var worsts []time.Duration
		var fails, changes int64
		var total time.Duration
		for b.Loop() {
			term := livetest.RaftTerm(b, c)
			ld := livetest.StartLoad(b, c)
			t0 := time.Now()
			for _, m := range c.Members {
				if err := m.Restart(); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := m.WaitReady(ctx)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(t0)
			st := ld.Stop()
			worsts = append(worsts, st.Worst)
			fails += st.Fails
			changes += int64(livetest.RaftTerm(b, c) - term)
		}
		n := float64(b.N)
		b.ReportMetric(total.Seconds()/n, "s-total/op")
		livetest.ReportWorst(b, worsts)
		b.ReportMetric(float64(fails)/n, "failed-requests/op")
		b.ReportMetric(float64(changes)/n, "leader-changes/op")
	})
}
