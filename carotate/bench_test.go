package carotate_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// BenchmarkCARotate runs whole CA rotations (`ca rotate --new`, all four
// stages) on one 3-member cluster run from etcd.env, under the load
// client of BenchmarkRoll. As in TestCARotate, the load client is
// restarted with the apiserver's new bundle after trust-both, as the
// rotation restarts the apiserver (its restart template here does
// nothing else).
//
// Reported per rotation: total time, failed client requests (both
// loads), those inside a leadership hand-off, leader changes (raft term
// increments; the rotation makes one hand-off in each of its two restart
// stages) and the worst client request. TestCARotate asserts what holds on
// any machine (stages proven, data intact, every acknowledged write read
// back); these counts depend on the machine and are reported here.
//
//	go test -run '^$' -bench CARotate -benchtime 5x ./carotate/
func BenchmarkCARotate(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Certs.Validity = "2h"
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: "true"})
	}})
	ctx := context.Background()
	var worsts []time.Duration
	var fails, handOffDrops, changes int64
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		term := caTerm(b, c)
		var out bytes.Buffer
		ld := livetest.StartLoad(b, c)
		res, err := carotate.Run(ctx, pki.New(c.Spec), carotate.Options{New: true, Until: pki.CAStageTrustBoth, Out: &out})
		st1 := ld.Stop()
		if err != nil {
			b.Fatalf("ca rotate --until trust-both: %v\n%s", err, out.String())
		}
		trust := res.Stages[len(res.Stages)-1]
		if err := c.ReloadAPIServerTLS(); err != nil {
			b.Fatal(err)
		}
		ld = livetest.StartLoad(b, c)
		res, err = carotate.Run(ctx, pki.New(c.Spec), carotate.Options{Out: &out})
		st2 := ld.Stop()
		if err != nil || res.Stage != "" {
			b.Fatalf("ca rotate: %v, stage %q\n%s", err, res.Stage, out.String())
		}
		if err := c.ReloadAPIServerTLS(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		fin := res.Stages[len(res.Stages)-1]
		for _, x := range []struct {
			st  livetest.LoadStats
			hos []runner.HandOff
		}{{st1, trust.HandOffs}, {st2, fin.HandOffs}} {
			dropped, _ := livetest.Classify(windows(x.hos), x.st.Failures)
			handOffDrops += int64(len(dropped))
			fails += x.st.Fails
		}
		worsts = append(worsts, max(st1.Worst, st2.Worst))
		changes += int64(caTerm(b, c) - term)
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s-total/op")
	livetest.ReportWorst(b, worsts)
	b.ReportMetric(float64(fails)/n, "failed-requests/op")
	b.ReportMetric(float64(handOffDrops)/n, "failed-in-hand-off/op")
	b.ReportMetric(float64(changes)/n, "leader-changes/op")
}
