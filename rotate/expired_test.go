package rotate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/verify"
)

// expiringLeaves is the harness's leaf validity for the expiry tests: a
// validity counts from issue, so the cluster's certificates expire this
// long after init, a few seconds after the members have started. It must
// leave the start (a few seconds, more on a loaded machine) some room.
const expiringLeaves = "25s"

// expiring starts a cluster whose leaves (and, with caValidity, CA)
// expire seconds after it starts, writes keys while they are valid, and
// returns the spec an operator would rotate with: a normal validity for
// what is issued next.
func expiring(t *testing.T, caValidity string) (*etcdtest.Cluster, *cluster.Spec, map[string]string) {
	t.Helper()
	c := startExpiring(t, 3*time.Second, func(f *etcdtest.SpecFile) {
		f.Certs.Validity = expiringLeaves
		f.Certs.RenewBefore = "5s"
		if caValidity != "" {
			f.CA.Validity = caValidity
		}
	})
	spec := *c.Spec
	spec.Leaf.Validity = 2 * time.Hour
	spec.Leaf.RenewBefore = time.Hour
	spec.CA.Validity = 48 * time.Hour
	cli := c.Client(t)
	keys := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("before-expiry/%d", i), fmt.Sprintf("value-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, k, v)
		cancel()
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		keys[k] = v
	}
	return c, &spec, keys
}

// startExpiring starts a cluster whose certificates (edit sets their
// validity, which counts from init) must still have at least room left
// once every member serves. A start slowed by a busy machine leaves less:
// that cluster is killed and another started, up to three times, rather
// than the test failing on the machine's speed.
func startExpiring(t *testing.T, room time.Duration, edit func(*etcdtest.SpecFile)) *etcdtest.Cluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c := etcdtest.Start(t, etcdtest.Options{Edit: edit})
		left := time.Until(earliestExpiry(t, c.Spec))
		if left >= room {
			return c
		}
		if attempt == 3 {
			t.Fatalf("three starts each left the certificates less than %s (last: %s): too slow a machine for this test", room, left)
		}
		t.Logf("the certificates expire %s after the cluster started, want %s: starting another", left, room)
		for _, m := range c.Members {
			if err := m.Kill(); err != nil {
				t.Logf("kill %s: %v", m.Name, err)
			}
		}
	}
}

// waitPastExpiry sleeps until every certificate of s (the CA too, when
// it is to expire) has expired, plus a margin.
func waitPastExpiry(t *testing.T, s *cluster.Spec, withCA bool) {
	t.Helper()
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, in := range infos {
		if (in.Target != nil || withCA) && in.Expires.After(last) {
			last = in.Expires
		}
	}
	time.Sleep(time.Until(last.Add(2 * time.Second)))
}

// TestRotateRunningOnExpiredCertificates lets every certificate of a
// loaded cluster expire under its open connections, then runs a plain
// rotate: it renews them all without restarting a member or failing a
// request, and every port serves an unexpired certificate afterwards.
// --recover on that healthy cluster is then refused with exit code 2.
func TestRotateRunningOnExpiredCertificates(t *testing.T) {
	t.Parallel()
	c, spec, _ := expiring(t, "")
	ld := livetest.StartLoad(t, c)
	pidsBefore := livetest.Pids(c)
	before := livetest.Serials(t, spec)
	waitPastExpiry(t, spec, false)
	checkNamedState(t, c, verify.StateServing)

	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(spec), rotate.Options{Out: &out})
	t.Logf("rotate output:\n%s", out.String())
	st := ld.Stop()
	t.Logf("load: %d requests in %s, %d failed, worst latency %s", st.Ops, st.Took.Round(time.Millisecond), st.Fails, st.Worst)
	if err != nil {
		t.Fatalf("rotate on a cluster running on expired certificates: %v", err)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	for _, f := range st.Failures {
		t.Errorf("failed request: %s", f)
	}
	if st.Ops == 0 {
		t.Error("no load ran")
	}
	if !maps.Equal(livetest.Pids(c), pidsBefore) || len(res.Members) != 0 {
		t.Errorf("members restarted (%d; pids %v, were %v); want none", len(res.Members), livetest.Pids(c), pidsBefore)
	}
	after := livetest.Serials(t, spec)
	for id, s := range after {
		if before[id] == s {
			t.Errorf("certificate %s was not renewed", id)
		}
	}
	for _, want := range []string{
		"warning: certificates already expired",
		"that expired at", // a served expired certificate, named
		"client " + cluster.ClientAPIServer + ": ",
		"the cluster was running on expired certificates and is no longer",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q", want)
		}
	}
	checkUnexpiredOnTheWire(t, spec, c.APIServerTLS())
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)

	// --recover is for a cluster without a quorum: here it is refused
	// (exit 2), changing nothing, and names the plain command.
	out.Reset()
	_, err = rotate.Run(context.Background(), pki.New(spec), rotate.Options{Recover: true, Out: &out})
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 2 || !strings.Contains(err.Error(), "without --recover") {
		t.Errorf("--recover on a healthy cluster: %v; want exit code 2 naming a plain rotate", err)
	}
	if !maps.Equal(livetest.Serials(t, spec), after) || !maps.Equal(livetest.Pids(c), pidsBefore) {
		t.Error("--recover on a healthy cluster changed certificates or restarted members")
	}
}

// TestRecoverDownWithExpiredCertificates stops every member after its
// certificates expired, as a reboot would: a plain rotate exits 1 naming
// --recover, which brings the cluster back with its data.
func TestRecoverDownWithExpiredCertificates(t *testing.T) {
	t.Parallel()
	c, spec, keys := expiring(t, "")
	waitPastExpiry(t, spec, false)
	stopAll(t, c)
	checkNamedState(t, c, verify.StateDown)
	testRecover(t, c, spec, keys, false)
}

// TestRecoverExpiredCA is the same with a CA that expired too: the
// recovery creates a new CA and re-issues everything from it, and a
// client certificate from the old CA is refused afterwards.
func TestRecoverExpiredCA(t *testing.T) {
	t.Parallel()
	c, spec, keys := expiring(t, "30s")
	old, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	// Made now, by hand, valid for an hour: ca.Sign would cap it at the
	// old CA's end. Refused later, it is refused for its CA alone.
	oldClient := clientCertFrom(t, old)
	waitPastExpiry(t, spec, true)
	stopAll(t, c)
	checkNamedState(t, c, verify.StateCAExpired)
	testRecover(t, c, spec, keys, true)

	now, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	if now.Cert.Equal(old.Cert) || !now.Cert.NotAfter.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("the CA was not replaced by a new one valid for 48h: now %s until %s", now.Cert.Subject, now.Cert.NotAfter)
	}
	infos, err := pki.List(pki.New(spec), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos[1:] {
		if in.Status != pki.StatusOK {
			t.Errorf("%s: %s %s after recovery; want ok (issued by the new CA, bundle trusting it)", in.Name, in.Status, in.Reason)
		}
		if err := now.Verify(in.Cert, in.Target.Usage(), time.Now()); err != nil {
			t.Errorf("%s does not chain to the new CA: %v", in.Name, err)
		}
	}
	pool := probe.CertPool([]*x509.Certificate{now.Cert})
	for _, ep := range c.Endpoints() {
		_, addr, _ := probe.ParseEndpoint(ep)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := probe.Dial(ctx, addr, probe.ClientConfig(pool, &oldClient))
		cancel()
		var pe *probe.Error
		if !errors.As(err, &pe) || pe.Kind != probe.KindClientCertRejected {
			t.Errorf("%s: a client certificate from the old CA got %v; want it rejected", addr, err)
		}
	}
}

// testRecover runs the recovery of a stopped cluster and checks it.
func testRecover(t *testing.T, c *etcdtest.Cluster, spec *cluster.Spec, keys map[string]string, newCA bool) {
	t.Helper()
	ctx := context.Background()
	before := livetest.Serials(t, spec)
	var out bytes.Buffer
	_, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out, RecoverCommand: "etcdpki rotate --spec S --recover"})
	t.Logf("plain rotate output:\n%s", out.String())
	var rn *rotate.RecoverNeededError
	if !errors.As(err, &rn) || rn.ExitCode() != 1 || rn.CAExpired != newCA || !strings.Contains(err.Error(), "etcdpki rotate --spec S --recover") {
		t.Fatalf("plain rotate of a down cluster with expired certificates: %v; want exit 1 naming the --recover command", err)
	}
	if !maps.Equal(livetest.Serials(t, spec), before) {
		t.Error("the refused plain rotate changed certificates")
	}

	out.Reset()
	if _, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Recover: true, DryRun: true, Out: &out}); err != nil {
		t.Fatalf("--recover --dry-run: %v", err)
	}
	t.Logf("--recover --dry-run:\n%s", out.String())
	for _, n := range spec.Nodes {
		if want := fmt.Sprintf("'%s' restart %s", c.Control, n.Name); !strings.Contains(out.String(), "restart: "+want) {
			t.Errorf("dry run does not list %s with its restart command", n.Name)
		}
	}
	if newCA && !strings.Contains(out.String(), "a new CA") {
		t.Error("dry run does not say a new CA replaces the expired one")
	}
	if !maps.Equal(livetest.Serials(t, spec), before) {
		t.Error("--recover --dry-run changed certificates")
	}

	out.Reset()
	res, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Recover: true, Out: &out})
	t.Logf("--recover output:\n%s", out.String())
	if err != nil {
		t.Fatalf("--recover: %v", err)
	}
	if len(res.Members) != len(spec.Nodes) {
		t.Errorf("%d members restarted, want all %d", len(res.Members), len(spec.Nodes))
	}
	after := livetest.Serials(t, spec)
	for id, s := range after {
		if before[id] == s {
			t.Errorf("certificate %s was not renewed", id)
		}
	}
	if !strings.Contains(out.String(), "recovered: the cluster was down") {
		t.Error("output does not say the cluster was recovered")
	}
	// The apiserver's view, from its bundle as it is now (its CA file
	// changed with a new CA).
	_, crt, key := etcdtest.APIServerFiles(c.Paths)
	api, err := etcdtest.TLSConfig(etcdtest.APIServerCA(c.Paths), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	h := probe.Health(ctx, c.Endpoints(), api, 5*time.Second)
	if !h.Healthy() {
		for _, r := range h.Endpoints {
			t.Errorf("%s: healthy=%v %v", r.Endpoint, r.Healthy, r.Err())
		}
	}
	checkUnexpiredOnTheWire(t, spec, api)
	cli := c.ClientTLS(t, api)
	for k, v := range keys {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cli.Get(rctx, k)
		cancel()
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
			t.Errorf("key %s written before expiry: %v %v; want %q", k, resp, err, v)
		}
	}
	// Once recovered, a plain run has nothing to do.
	out.Reset()
	if _, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out}); err != nil || !strings.Contains(out.String(), "nothing due") {
		t.Errorf("plain rotate after recovery: %v\n%s", err, out.String())
	}
}

// checkUnexpiredOnTheWire makes fresh, strict handshakes with every
// member's client and peer ports: each serves the serial on disk, and it
// has not expired.
func checkUnexpiredOnTheWire(t *testing.T, s *cluster.Spec, cfg *tls.Config) {
	t.Helper()
	want := livetest.Serials(t, s)
	for _, n := range s.Nodes {
		for _, p := range []struct{ url, id string }{{n.ClientURLs[0], n.Name + "/etcd-server"}, {n.PeerURLs[0], n.Name + "/etcd-peer"}} {
			_, addr, _ := probe.ParseEndpoint(p.url)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			leaf, err := probe.ServingCert(ctx, addr, cfg)
			cancel()
			if err != nil {
				t.Errorf("%s: %v", addr, err)
				continue
			}
			if got := certx.Serial(leaf); got != want[p.id] || !time.Now().Before(leaf.NotAfter) {
				t.Errorf("%s serves serial %s until %s; want %s, unexpired", addr, got, leaf.NotAfter, want[p.id])
			}
		}
	}
}

// checkNamedState asserts what verify (and certs list, through the same
// verify.ExpiredState) says about the cluster's expired certificates.
func checkNamedState(t *testing.T, c *etcdtest.Cluster, want string) {
	t.Helper()
	rep, err := verify.Evaluate(context.Background(), pki.New(c.Spec), verify.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ch verify.Check
	ok := false
	for _, c := range rep.Checks {
		if c.Name == verify.CheckExpired && c.Target == "cluster" {
			ch, ok = c, true
			break
		}
	}
	if !ok || ch.Status != verify.Fail || !strings.HasPrefix(ch.Reason, want) || rep.Expired == nil || rep.Expired.State != want {
		t.Errorf("verify says %+v (%+v); want %q", ch, rep.Expired, want)
	}
	t.Logf("verify: %s: %s", ch.Name, ch.Reason)
}

func stopAll(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	for _, m := range c.Members {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// clientCertFrom signs a client certificate valid for an hour with a's
// key directly (not through ca.Sign, which caps it at a's own end).
func clientCertFrom(t *testing.T, a *ca.CA) tls.Certificate {
	t.Helper()
	pair, err := a.ProbeClient(time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := certx.ParseKey(a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "old-ca-client"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, pair.Leaf.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pair.PrivateKey, Leaf: leaf}
}
