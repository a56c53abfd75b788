package rotate_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/revoke"
)

// revokeCluster is a 3-member cluster run from etcd.env (the only way
// etcd reads a CRL) with an extra client, etcd-admin.
func revokeCluster(t testing.TB) *etcdtest.Cluster {
	return etcdtest.Start(t, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Clients = append(f.Clients, cluster.FileClient{Name: "etcd-admin"})
	}})
}

// heldPair is a certificate and key as read before a revocation: what a
// thief of the key would present.
type heldPair struct {
	id     string
	serial string
	pair   tls.Certificate
}

func holdPairs(t testing.TB, s *cluster.Spec, ids ...string) []heldPair {
	t.Helper()
	picked, missing := pki.Select(pki.New(s).Targets, ids)
	if len(missing) > 0 {
		t.Fatalf("unknown targets %v", missing)
	}
	var out []heldPair
	for _, tg := range picked {
		certPEM, err := os.ReadFile(tg.CertPath())
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := os.ReadFile(tg.KeyPath())
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		out = append(out, heldPair{id: tg.ID, serial: certx.Serial(leaf), pair: pair})
	}
	return out
}

// allPorts are every member's client and peer addresses.
func allPorts(t testing.TB, s *cluster.Spec) []string {
	t.Helper()
	var out []string
	for _, n := range s.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, err := probe.ParseEndpoint(u)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, addr)
		}
	}
	return out
}

func caPool(t testing.TB, c *etcdtest.Cluster) *x509.CertPool {
	t.Helper()
	pool, err := probe.LoadCertPool(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// checkVerdicts presents pair on every port over fresh handshakes and
// wants it accepted (or refused) on each.
func checkVerdicts(t *testing.T, c *etcdtest.Cluster, what string, pair tls.Certificate, accepted bool) {
	t.Helper()
	pool := caPool(t, c)
	for _, addr := range allPorts(t, c.Spec) {
		v, err := probe.Present(context.Background(), addr, pool, pair, 5*time.Second)
		if err != nil {
			t.Errorf("%s on %s: %v", what, addr, err)
			continue
		}
		if v.Accepted != accepted {
			t.Errorf("%s on %s: accepted=%v (%s), want %v", what, addr, v.Accepted, v.How, accepted)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := revokeCluster(t)
	t.Run("ClientAndHealthcheckUnderLoad", func(t *testing.T) { testRevokeUnderLoad(t, c) })
	t.Run("PeerCertRefusedOnAnotherMembersPeerPort", func(t *testing.T) { testRevokePeer(t, c) })
	t.Run("SerialNoLongerInUse", func(t *testing.T) { testRevokeSerial(t, c) })
}

func testRevokeUnderLoad(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	hc := etcdtest.NodeName(2) + "/etcd-healthcheck-client"
	old := holdPairs(t, c.Spec, "client/etcd-admin", hc)
	// Before: the pairs about to be revoked work on every port.
	for _, h := range old {
		checkVerdicts(t, c, h.id+" before the revocation", h.pair, true)
	}
	termBefore, pidsBefore := raftTerm(t, c), pids(c)
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"client/etcd-admin", hc})
	ld := startLoad(t, c)
	var out bytes.Buffer
	res, err := revoke.Revoke(ctx, revoke.RevokeOptions{Spec: c.Spec, Targets: targets, Reason: "keyCompromise", Out: &out})
	st := ld.stop()
	t.Logf("revoke output:\n%s", out.String())
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	t.Logf("load: %d requests, %d failed; revoke took %s, refused everywhere %s after the checks began",
		st.ops, st.fails, res.Took.Round(time.Millisecond), res.Refused.Round(time.Millisecond))
	for _, f := range st.failures {
		t.Errorf("failed request: %s", f)
	}
	checkAcked(t, c, c.APIServerTLS(), st)
	if !maps.Equal(pids(c), pidsBefore) {
		t.Errorf("pids changed from %v to %v: a member was restarted", pidsBefore, pids(c))
	}
	if term := raftTerm(t, c); term != termBefore {
		t.Errorf("raft term went from %d to %d", termBefore, term)
	}
	// After, on the wire, independently of Revoke's own proof: the old
	// pairs are refused on every client and peer port, the new ones work.
	for _, h := range old {
		checkVerdicts(t, c, h.id+" (revoked)", h.pair, false)
	}
	for _, h := range holdPairs(t, c.Spec, "client/etcd-admin", hc) {
		for _, o := range old {
			if o.id == h.id && o.serial == h.serial {
				t.Errorf("%s was not replaced", h.id)
			}
		}
		checkVerdicts(t, c, h.id+" (replacement)", h.pair, true)
	}
	crl, err := pki.ReadCRL(c.Paths.CRL())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range old {
		e, ok := crl.Entry(h.serial)
		if !ok || e.Name != h.id || e.Reason != "keyCompromise" {
			t.Errorf("CRL entry for %s: %+v (found %v)", h.id, e, ok)
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
	res, err = revoke.Revoke(ctx, revoke.RevokeOptions{Spec: c.Spec, Targets: targets, Reason: "keyCompromise", Out: &again})
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
	old := holdPairs(t, c.Spec, id)[0]
	other := c.Spec.Nodes[1]
	_, otherPeer, _ := probe.ParseEndpoint(other.PeerURLs[0])
	pool := caPool(t, c)
	if v, err := probe.Present(ctx, otherPeer, pool, old.pair, 5*time.Second); err != nil || !v.Accepted {
		t.Fatalf("before: %s's peer port did not accept %s: %+v %v", other.Name, id, v, err)
	}
	termBefore := raftTerm(t, c)
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{id})
	var out bytes.Buffer
	if _, err := revoke.Revoke(ctx, revoke.RevokeOptions{Spec: c.Spec, Targets: targets, Reason: "keyCompromise", Out: &out}); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out.String())
	}
	t.Logf("revoke output:\n%s", out.String())
	v, err := probe.Present(ctx, otherPeer, pool, old.pair, 5*time.Second)
	if err != nil || v.Accepted {
		t.Errorf("after: %s's peer port: %+v %v, want the revoked peer certificate refused", other.Name, v, err)
	}
	if term := raftTerm(t, c); term != termBefore {
		t.Errorf("raft term went from %d to %d", termBefore, term)
	}
	checkHealthy(t, c)
}

func testRevokeSerial(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	// A serial no longer in use: the pair certs renew replaced, in the backup.
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"apiserver-etcd-client"})
	old := holdPairs(t, c.Spec, "apiserver-etcd-client")[0]
	if _, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts := revoke.RevokeOptions{Spec: c.Spec, Serials: []string{strings.ToUpper(old.serial)}, Reason: "superseded", Out: &out}
	res, err := revoke.Revoke(ctx, opts)
	if err != nil {
		t.Fatalf("revoke --serial: %v\n%s", err, out.String())
	}
	if len(res.Revoked) != 1 || res.Revoked[0].Serial != old.serial {
		t.Errorf("revoked %+v, want %s", res.Revoked, old.serial)
	}
	checkVerdicts(t, c, "the apiserver's replaced pair", old.pair, false)
	opts.Serials = []string{old.serial}
	if res, err := revoke.Revoke(ctx, opts); err != nil || !res.Unchanged {
		t.Errorf("revoking the serial again: %+v, %v", res, err)
	}
	// Serials in use, unknown or not hex are input errors, and change nothing.
	inUse := holdPairs(t, c.Spec, "apiserver-etcd-client")[0].serial
	before, _ := os.ReadFile(c.Paths.CRL())
	for _, bad := range []string{inUse, "123456789abcdef", "xyz", "-5"} {
		_, err := revoke.Revoke(ctx, revoke.RevokeOptions{Spec: c.Spec, Serials: []string{bad}, Out: &out})
		var ie *input.Error
		if !errors.As(err, &ie) {
			t.Errorf("--serial %s: %v, want an input error", bad, err)
		}
	}
	if _, err := revoke.Revoke(ctx, revoke.RevokeOptions{Spec: c.Spec, Targets: targets, Reason: "bogus"}); err == nil {
		t.Error("a bad reason was accepted")
	}
	if after, _ := os.ReadFile(c.Paths.CRL()); !bytes.Equal(before, after) {
		t.Error("bad input changed the CRL")
	}
}
