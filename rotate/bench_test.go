package rotate_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/etcdtest"
	"github.com/etcdpki/etcdpki/rotate"
)

// BenchmarkRoll measures a full rotation of a 3-member cluster under
// client load (the kube-apiserver stand-in of the acceptance test), and,
// for comparison, the naive procedure it replaces: restart each member in
// turn, in spec order, waiting for it to answer a linearizable read, with
// no hand-off (etcd's own transfer on a graceful stop) and no gates.
//
// Reported per run: total time, the floor (sum of each member's
// restart-to-healthy time; rotate only), their ratio, the worst client
// request latency, failed client requests (for rotate, also how many of
// them etcd dropped inside the leadership hand-off) and leader changes. Goals (not
// asserted): ratio <= 1.2, worst latency < 250ms, zero failures.
//
//	go test -run '^$' -bench Roll -benchtime 3x ./rotate/
func BenchmarkRoll(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) { f.Certs.Validity = "2h" }})
	b.Run("rotate", func(b *testing.B) {
		var worsts []time.Duration
		var fails, changes, handOffDrops int64
		var total, floor time.Duration
		for b.Loop() {
			term := raftTerm(b, c)
			ld := startLoad(b, c)
			var out bytes.Buffer
			res, err := rotate.Run(context.Background(), rotate.Options{Spec: c.Spec, RenewBefore: everythingDue, Out: &out})
			st := ld.stop()
			if err != nil {
				b.Fatalf("rotate: %v\n%s", err, out.String())
			}
			total += res.Took
			floor += res.Floor()
			dropped, _ := classify(res, st.failures)
			handOffDrops += int64(len(dropped))
			worsts = append(worsts, st.worst)
			fails += st.fails
			changes += int64(raftTerm(b, c) - term)
		}
		n := float64(b.N)
		b.ReportMetric(total.Seconds()/n, "s-total/op")
		b.ReportMetric(floor.Seconds()/n, "s-floor/op")
		b.ReportMetric(float64(total)/float64(floor), "total/floor")
		reportWorst(b, worsts)
		b.ReportMetric(float64(fails)/n, "failed-requests/op")
		b.ReportMetric(float64(handOffDrops)/n, "failed-in-hand-off/op")
		b.ReportMetric(float64(changes)/n, "leader-changes/op")
	})
	b.Run("naive", func(b *testing.B) {
		var worsts []time.Duration
		var fails, changes int64
		var total time.Duration
		for b.Loop() {
			term := raftTerm(b, c)
			ld := startLoad(b, c)
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
			st := ld.stop()
			worsts = append(worsts, st.worst)
			fails += st.fails
			changes += int64(raftTerm(b, c) - term)
		}
		n := float64(b.N)
		b.ReportMetric(total.Seconds()/n, "s-total/op")
		reportWorst(b, worsts)
		b.ReportMetric(float64(fails)/n, "failed-requests/op")
		b.ReportMetric(float64(changes)/n, "leader-changes/op")
	})
}

// reportWorst reports the worst client request of the worst run and of
// the median run: one unlucky run should not hide the typical one.
func reportWorst(b *testing.B, worsts []time.Duration) {
	slices.Sort(worsts)
	b.ReportMetric(float64(worsts[len(worsts)-1].Milliseconds()), "ms-worst-request-max")
	b.ReportMetric(float64(worsts[len(worsts)/2].Milliseconds()), "ms-worst-request-median")
}
