package revoke_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/revoke"
	"github.com/etcdpki/etcdpki/runner"
)

func TestRevoke(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := livetest.RevokeCluster(t)
	t.Run("ClientAndHealthcheckUnderLoad", func(t *testing.T) { testRevokeUnderLoad(t, c) })
	t.Run("PeerCertRefusedOnAnotherMembersPeerPort", func(t *testing.T) { testRevokePeer(t, c) })
	t.Run("SerialNoLongerInUse", func(t *testing.T) { testRevokeSerial(t, c) })
	t.Run("ReportsEvents", func(t *testing.T) { testRevokeReportsEvents(t, c) })
}

func testRevokeUnderLoad(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	hc := etcdtest.NodeName(2) + "/etcd-healthcheck-client"
	old := livetest.HoldPairs(t, c.Spec, "client/etcd-admin", hc)
	// Before: the pairs about to be revoked work on every port.
	for _, h := range old {
		livetest.CheckVerdicts(t, c, h.ID+" before the revocation", h.Pair, true)
	}
	termBefore, pidsBefore := livetest.RaftTerm(t, c), livetest.Pids(c)
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"client/etcd-admin", hc})
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	res, err := revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Targets: targets, Reason: "keyCompromise", Out: &out})
	st := ld.Stop()
	t.Logf("revoke output:\n%s", out.String())
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	t.Logf("load: %d requests, %d failed; revoke took %s, refused everywhere %s after the checks began",
		st.Ops, st.Fails, res.Took.Round(time.Millisecond), res.Refused.Round(time.Millisecond))
	for _, f := range st.Failures {
		t.Errorf("failed request: %s", f)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if !maps.Equal(livetest.Pids(c), pidsBefore) {
		t.Errorf("pids changed from %v to %v: a member was restarted", pidsBefore, livetest.Pids(c))
	}
	if term := livetest.RaftTerm(t, c); term != termBefore {
		t.Errorf("raft term went from %d to %d", termBefore, term)
	}
	// After, on the wire, independently of Revoke's own proof: the old
	// pairs are refused on every client and peer port, the new ones work.
	for _, h := range old {
		livetest.CheckVerdicts(t, c, h.ID+" (revoked)", h.Pair, false)
	}
	for _, h := range livetest.HoldPairs(t, c.Spec, "client/etcd-admin", hc) {
		for _, o := range old {
			if o.ID == h.ID && o.Serial == h.Serial {
				t.Errorf("%s was not replaced", h.ID)
			}
		}
		livetest.CheckVerdicts(t, c, h.ID+" (replacement)", h.Pair, true)
	}
	crl, err := pki.LoadCRL(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range old {
		e, ok := crl.Entry(h.Serial)
		if !ok || e.Name != h.ID || e.Reason != "keyCompromise" {
			t.Errorf("CRL entry for %s: %+v (found %v)", h.ID, e, ok)
		}
	}
	for _, line := range []string{"[renew] client/etcd-admin", "[crl] published", "accepted with a linearizable read on every client port", "refused on every client and peer port"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q", line)
		}
	}
	// Twice: nothing changes.
	before, _ := os.ReadFile(c.Paths.CRL())
	var again bytes.Buffer
	res, err = revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Targets: targets, Reason: "keyCompromise", Out: &again})
	if err != nil || !res.Unchanged {
		t.Fatalf("second revoke: %+v, %v\n%s", res, err, again.String())
	}
	if after, _ := os.ReadFile(c.Paths.CRL()); !bytes.Equal(before, after) {
		t.Error("the second revoke changed the CRL")
	}
}

func testRevokePeer(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	id := etcdtest.NodeName(1) + "/etcd-peer"
	old := livetest.HoldPairs(t, c.Spec, id)[0]
	other := c.Spec.Nodes[1]
	_, otherPeer, _ := probe.ParseEndpoint(other.PeerURLs[0])
	pool := livetest.CaPool(t, c)
	if v, err := probe.Present(ctx, otherPeer, pool, old.Pair, 5*time.Second); err != nil || !v.Accepted {
		t.Fatalf("before: %s's peer port did not accept %s: %+v %v", other.Name, id, v, err)
	}
	termBefore := livetest.RaftTerm(t, c)
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{id})
	var out bytes.Buffer
	if _, err := revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Targets: targets, Reason: "keyCompromise", Out: &out}); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out.String())
	}
	t.Logf("revoke output:\n%s", out.String())
	v, err := probe.Present(ctx, otherPeer, pool, old.Pair, 5*time.Second)
	if err != nil || v.Accepted {
		t.Errorf("after: %s's peer port: %+v %v, want the revoked peer certificate refused", other.Name, v, err)
	}
	if term := livetest.RaftTerm(t, c); term != termBefore {
		t.Errorf("raft term went from %d to %d", termBefore, term)
	}
	livetest.CheckHealthy(t, c)
}

func testRevokeSerial(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	// A serial no longer in use: the pair certs renew replaced, in the backup.
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"apiserver-etcd-client"})
	old := livetest.HoldPairs(t, c.Spec, "apiserver-etcd-client")[0]
	if _, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts := revoke.Options{Serials: []string{strings.ToUpper(old.Serial)}, Reason: "superseded", Out: &out}
	res, err := revoke.Revoke(ctx, pki.New(c.Spec), opts)
	if err != nil {
		t.Fatalf("revoke --serial: %v\n%s", err, out.String())
	}
	if len(res.Revoked) != 1 || res.Revoked[0].Serial != old.Serial {
		t.Errorf("revoked %+v, want %s", res.Revoked, old.Serial)
	}
	livetest.CheckVerdicts(t, c, "the apiserver's replaced pair", old.Pair, false)
	opts.Serials = []string{old.Serial}
	if res, err := revoke.Revoke(ctx, pki.New(c.Spec), opts); err != nil || !res.Unchanged {
		t.Errorf("revoking the serial again: %+v, %v", res, err)
	}
	// Serials in use, unknown or not hex are input errors, and change nothing.
	inUse := livetest.HoldPairs(t, c.Spec, "apiserver-etcd-client")[0].Serial
	before, _ := os.ReadFile(c.Paths.CRL())
	for _, bad := range []string{inUse, "123456789abcdef", "xyz", "-5"} {
		_, err := revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Serials: []string{bad}, Out: &out})
		var ie *input.Error
		if !errors.As(err, &ie) {
			t.Errorf("--serial %s: %v, want an input error", bad, err)
		}
	}
	if _, err := revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Targets: targets, Reason: "bogus"}); err == nil {
		t.Error("a bad reason was accepted")
	}
	if after, _ := os.ReadFile(c.Paths.CRL()); !bytes.Equal(before, after) {
		t.Error("bad input changed the CRL")
	}
}

// testRevokeReportsEvents: given a Reporter, a revoke reports every line
// as an event of operation "revoke" (Message is the line Out would get),
// and the publication and the refusal say in their fields what they did.
func testRevokeReportsEvents(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"apiserver-etcd-client"})
	old := livetest.HoldPairs(t, c.Spec, "apiserver-etcd-client")[0]
	if _, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder.Recorder{}
	if _, err := revoke.Revoke(ctx, pki.New(c.Spec), revoke.Options{Serials: []string{old.Serial}, Reason: "superseded", Reporter: rec}); err != nil {
		t.Fatal(err)
	}
	byStep := map[string]runner.Event{}
	for _, e := range rec.Events() {
		if e.Op != "revoke" || e.Message == "" || e.Time.IsZero() {
			t.Errorf("event %+v: want operation revoke, a message and a time", e)
		}
		byStep[e.Step] = e
	}
	short := pki.ShortSerial(old.Serial)
	if e := byStep[runner.StepPublish]; e.Outcome != runner.OutcomeDone || e.Target != short || !strings.HasPrefix(e.Message, "[crl] published CRL number ") {
		t.Errorf("publish event %+v, want done, target %s, the [crl] line", e, short)
	}
	if e := byStep[runner.StepRefused]; e.Outcome != runner.OutcomeDone || e.Serial != old.Serial || !strings.Contains(e.Message, "refused on every client and peer port") {
		t.Errorf("refused event %+v, want done, serial %s, the refusal line", e, old.Serial)
	}
}
