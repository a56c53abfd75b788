package member_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// memberList is etcd's member list as the apiserver sees it: names by
// voting and learner.
func memberList(t testing.TB, c *etcdtest.Cluster) (voters, learners []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Client(t).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Members {
		if m.IsLearner {
			learners = append(learners, m.Name)
		} else {
			voters = append(voters, m.Name)
		}
	}
	return voters, learners
}

func leaderName(t testing.TB, c *etcdtest.Cluster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l.Name
}

func waitExit(t *testing.T, m *etcdtest.Member) {
	t.Helper()
	exited, _ := m.Exited()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Errorf("removed member %s still running after 30s", m.Name)
	}
}

// TestMember adds a 4th member and removes members (a follower, a killed
// one and its replacement with the same name and IP, the leader) on a
// cluster run from etcd.env, under the load client.
func TestMember(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := livetest.RevokeCluster(t)
	ctx := context.Background()

	// Add etcd-4 on 127.0.0.4 while the apiserver stand-in uses 1-3.
	ld := livetest.StartLoad(t, c)
	term := livetest.RaftTerm(t, c)
	m4 := c.AddNode(t, nil)
	var out bytes.Buffer
	// The recorder passes every event on to the lines the CLI prints.
	rec := &recorder.Recorder{Next: runner.TextReporter(&out)}
	res, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Reporter: rec})
	st := ld.Stop()
	t.Logf("member add:\n%s", out.String())
	if err != nil {
		t.Fatalf("member add: %v", err)
	}
	for _, f := range st.Failures {
		t.Errorf("failed request during the add: %s", f)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if got := livetest.RaftTerm(t, c); got != term {
		t.Errorf("raft term went from %d to %d during the add", term, got)
	}
	if voters, learners := memberList(t, c); len(voters) != 4 || len(learners) != 0 {
		t.Errorf("after the add: voters %v learners %v", voters, learners)
	}
	livetest.CheckHealthy(t, c)
	livetest.CheckServing(t, c)
	if res.CatchUp <= 0 {
		t.Errorf("catch-up time %s", res.CatchUp)
	}
	checkAddEvents(t, rec.Events(), m4.Name, livetest.Serials(t, c.Spec)[m4.Name+"/etcd-server"])
	flags, _ := os.ReadFile(c.Paths.APIServerFlags())
	if !strings.Contains(string(flags), strings.TrimPrefix(m4.ClientURL, "https://")) {
		t.Errorf("etcd-flags lack %s:\n%s", m4.ClientURL, flags)
	}
	// The other members' configs changed only in initial-cluster, read
	// only at bootstrap: a rotation restarts no member for them.
	pidsBefore := livetest.Pids(c)
	var rot bytes.Buffer
	rres, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Out: &rot})
	if err != nil {
		t.Fatalf("rotate after the add: %v\n%s", err, rot.String())
	}
	if len(rres.Members) != 0 || !maps.Equal(livetest.Pids(c), pidsBefore) {
		t.Errorf("rotate after the add restarted %v (pids %v -> %v):\n%s", rres.Members, pidsBefore, livetest.Pids(c), rot.String())
	}
	// Again: nothing to do.
	if res, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Out: &out}); err != nil || !res.Unchanged {
		t.Errorf("second add: %+v %v", res, err)
	}

	t.Run("RemoveFollower", func(t *testing.T) {
		name := etcdtest.NodeName(4)
		if leaderName(t, c) == name {
			name = etcdtest.NodeName(3)
		}
		testRemove(t, c, name, false)
	})
	t.Run("RemoveKilledThenReplace", func(t *testing.T) {
		var name string
		for _, m := range c.Members {
			if m.Name != leaderName(t, c) {
				name = m.Name
			}
		}
		if err := c.Member(name).Kill(); err != nil {
			t.Fatal(err)
		}
		node := testRemove(t, c, name, true)
		// The replacement on the same name, IP and ports, whose host still
		// has the old data directory: refused, naming it, nothing changed.
		m := c.ReAddNode(t, node)
		before, _ := os.ReadFile(filepath.Join(c.Paths.PKI, runner.StateFile))
		var out bytes.Buffer
		_, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: name, Out: &out})
		var ie *input.Error
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), m.DataDir) {
			t.Fatalf("add over a used data dir: %v, want an input error naming %s", err, m.DataDir)
		}
		if after, _ := os.ReadFile(filepath.Join(c.Paths.PKI, runner.StateFile)); !bytes.Equal(before, after) {
			t.Error("the refused add changed the journal")
		}
		if voters, learners := memberList(t, c); len(voters) != 2 || len(learners) != 0 {
			t.Errorf("the refused add changed the membership: voters %v learners %v", voters, learners)
		}
		if err := os.RemoveAll(m.DataDir); err != nil {
			t.Fatal(err)
		}
		ld := livetest.StartLoad(t, c)
		res, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: name, Out: &out})
		st := ld.Stop()
		t.Logf("member add (replacement):\n%s", out.String())
		if err != nil {
			t.Fatalf("add the replacement: %v", err)
		}
		for _, f := range st.Failures {
			t.Errorf("failed request during the replacement's add: %s", f)
		}
		livetest.CheckAcked(t, c, c.APIServerTLS(), st)
		if voters, _ := memberList(t, c); len(voters) != 3 {
			t.Errorf("voters after the replacement: %v", voters)
		}
		_ = res
		livetest.CheckHealthy(t, c)
		livetest.CheckServing(t, c)
	})
	t.Run("RemoveLeader", func(t *testing.T) {
		testRemove(t, c, leaderName(t, c), false)
	})
}

// testRemove deletes name from the spec, points the load client (the
// apiserver) at the remaining members, removes it and checks: for a
// follower no failed request and no leader change, for the leader one
// hand-off; every acknowledged write reads back; the member gone and
// stopped, its certificates refused on every remaining port.
func testRemove(t *testing.T, c *etcdtest.Cluster, name string, dead bool) etcdtest.SpecNode {
	t.Helper()
	ctx := context.Background()
	wasLeader := !dead && leaderName(t, c) == name
	held := livetest.HoldPairs(t, c.Spec, name+"/etcd-peer", name+"/etcd-server", name+"/etcd-healthcheck-client")
	// Still in the spec: refused, exit 2.
	if _, err := member.Remove(ctx, pki.New(c.Spec), member.Options{Name: name}); err == nil || !strings.Contains(err.Error(), "delete it there first") {
		t.Fatalf("remove of a node still in the spec: %v", err)
	}
	var term uint64
	if !dead {
		term = livetest.RaftTerm(t, c)
	}
	node, m := c.RemoveNode(t, name)
	if dead {
		term = livetest.RaftTerm(t, c)
	}
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	res, err := member.Remove(ctx, pki.New(c.Spec), member.Options{Name: name, Out: &out})
	st := ld.Stop()
	t.Logf("member remove %s:\n%s", name, out.String())
	if err != nil {
		t.Fatalf("member remove: %v", err)
	}
	// Removing a follower is a routine path: no request may fail, and
	// leadership stays. Removing the leader moves leadership once, and a
	// proposal the old leader had not committed can time out or be
	// dropped: how many depends on the machine's load, so those are
	// logged, and BenchmarkMember counts them
	// (remove-leader-failed-requests/op).
	changes := livetest.RaftTerm(t, c) - term
	if wasLeader {
		for _, f := range st.Failures {
			t.Logf("FAILED while the leader was removed: %s", f)
		}
		if res.HandOff == nil {
			t.Error("removing the leader: no hand-off")
		}
		t.Logf("removing the leader: raft term up by %d (one hand-off; more are elections a busy machine provoked)", changes)
	} else {
		for _, f := range st.Failures {
			t.Errorf("failed request while a follower was removed: %s", f)
		}
		if changes != 0 {
			t.Errorf("removing a follower: %d leader changes", changes)
		}
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	waitExit(t, m)
	voters, _ := memberList(t, c)
	for _, v := range voters {
		if v == name {
			t.Errorf("%s is still a member: %v", name, voters)
		}
	}
	for _, h := range held {
		livetest.CheckVerdicts(t, c, h.ID+" (removed member)", h.Pair, false)
	}
	if _, err := os.Stat(c.Paths.NodeDir(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bundle of %s is still in place: %v", name, err)
	}
	livetest.CheckHealthy(t, c)
	return node
}
