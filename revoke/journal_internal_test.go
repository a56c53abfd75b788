package revoke

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
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
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// TestRevokeJournal runs the revocations a journal must carry through on
// one real cluster started from etcd.env: a step that fails after the
// journal (exit 1, and the command that finishes it), a revoke finished
// after its node left the spec, and a lost CA CRL that rotate rebuilds
// instead of un-revoking everything.
func TestRevokeJournal(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Clients = append(f.Clients, cluster.FileClient{Name: "etcd-admin"})
	}})
	t.Run("StepFailsAfterJournalExitsOne", func(t *testing.T) { testRevokeStepFails(t, c) })
	t.Run("FinishedAfterTheNodeLeftTheSpec", func(t *testing.T) { testRevokeNodeLeft(t, c) })
	t.Run("LostCRLIsRebuiltNotEmptied", func(t *testing.T) { testLostCRL(t, c) })
	t.Run("SeveralSerialsOneCRLOneProof", func(t *testing.T) { testSeveralSerials(t, c) })
}

// pairOf reads a target's pair as a thief of its key would hold it.
func pairOf(t *testing.T, s *cluster.Spec, id string) (pki.Target, tls.Certificate, string) {
	t.Helper()
	picked, _ := pki.Select(pki.New(s).Targets, []string{id})
	if len(picked) != 1 {
		t.Fatalf("no target %s", id)
	}
	pair, err := tls.LoadX509KeyPair(picked[0].CertPath(), picked[0].KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	return picked[0], pair, certx.Serial(leaf)
}

// wantRefused presents pair on the client and peer port of every node of
// s over fresh handshakes: each must refuse it.
func wantRefused(t *testing.T, c *etcdtest.Cluster, s *cluster.Spec, what string, pair tls.Certificate) {
	t.Helper()
	pool, err := probe.LoadCertPool(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, _ := probe.ParseEndpoint(u)
			if v, err := probe.Present(context.Background(), addr, pool, pair, 5*time.Second); err != nil || v.Accepted {
				t.Errorf("%s on %s: %+v %v, want refused", what, addr, v, err)
			}
		}
	}
}

func testRevokeStepFails(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	tg, old, serial := pairOf(t, c.Spec, "apiserver-etcd-client")
	if _, err := issue.Renew(ctx, pki.New(c.Spec), []pki.Target{tg}, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	broken := *c.Spec
	broken.Nodes = append([]cluster.Node(nil), c.Spec.Nodes...)
	broken.Nodes[1].Deploy = "exit 3"
	var out bytes.Buffer
	_, err := Revoke(ctx, pki.New(&broken), Options{Serials: []string{serial}, Reason: "superseded", Out: &out})
	var coder input.Coder
	if !errors.As(err, &coder) || coder.ExitCode() != 1 {
		t.Fatalf("a deploy that fails after the journal: %v, want exit 1\n%s", err, out.String())
	}
	want := "the revoke is journaled at step deploy: fix that and run `etcdpki certs revoke --reason superseded --serial " + serial + "` again to finish it"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if j := runner.PendingRevoke(c.Spec.PKIDir); j == nil || j.Step != runner.StepDeploy {
		t.Fatalf("journal holds %+v, want the revoke at step deploy", j)
	}
	out.Reset()
	if _, err := Revoke(ctx, pki.New(c.Spec), Options{Serials: []string{serial}, Reason: "superseded", Out: &out}); err != nil {
		t.Fatalf("finishing it: %v\n%s", err, out.String())
	}
	if j := runner.PendingRevoke(c.Spec.PKIDir); j != nil {
		t.Errorf("journal still holds %+v", j)
	}
	wantRefused(t, c, c.Spec, "the replaced apiserver pair", old)
}

func testRevokeNodeLeft(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	id := etcdtest.NodeName(3) + "/etcd-healthcheck-client"
	tg, old, serial := pairOf(t, c.Spec, id)
	var out bytes.Buffer
	o := Options{Targets: []pki.Target{tg}, Reason: "keyCompromise", Out: &out, crashAt: runner.StepRenew}
	if _, err := Revoke(ctx, pki.New(c.Spec), o); !errors.Is(err, errCrash) {
		t.Fatalf("crash after renew: %v\n%s", err, out.String())
	}
	// The node leaves the spec before the revoke is finished.
	left := *c.Spec
	left.Nodes = append([]cluster.Node(nil), c.Spec.Nodes[:2]...)
	out.Reset()
	if _, err := Revoke(ctx, pki.New(&left), Options{Gone: []string{id}, Reason: "keyCompromise", Out: &out}); err != nil {
		t.Fatalf("finishing the revoke without its node: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), id+" is no longer in the spec: it is not replaced, and its serial") {
		t.Errorf("no line says the target left the spec:\n%s", out.String())
	}
	if j := runner.PendingRevoke(c.Spec.PKIDir); j != nil {
		t.Errorf("journal still holds %+v", j)
	}
	crl, err := pki.LoadCRL(c.Paths)
	if err != nil || !crl.Has(serial) {
		t.Fatalf("CRL lacks %s (%v)", serial, err)
	}
	if e, _ := crl.Entry(serial); e.Name != id || e.NotAfter.IsZero() {
		t.Errorf("entry %+v: want its name and its certificate's notAfter", e)
	}
	wantRefused(t, c, &left, "the revoked healthcheck pair", old)
	// Bring the third bundle up to date for the next test.
	if _, err := issue.ResignCRL(ctx, pki.New(c.Spec), nil, issue.Options{}); err != nil {
		t.Fatal(err)
	}
}

// testLostCRL deletes the CA's crl.der (store and link), then the link
// alone: rotate signs the CRL again from revoked.json and the bundles'
// copies, numbered above every CRL seen, and every member still refuses
// what was revoked.
func testLostCRL(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	tg, old, serial := pairOf(t, c.Spec, "client/etcd-admin")
	var out bytes.Buffer
	if _, err := Revoke(ctx, pki.New(c.Spec), Options{Targets: []pki.Target{tg}, Reason: "keyCompromise", Out: &out}); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out.String())
	}
	before, err := pki.LoadCRL(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	inStore := filepath.Join(c.Paths.CADir(), "..ca.store", "..data", pki.CRLFile)
	for _, gone := range [][]string{{inStore, c.Paths.CRL()}, {c.Paths.CRL()}} {
		for _, p := range gone {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		out.Reset()
		if _, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Out: &out}); err != nil {
			t.Fatalf("rotate after removing %v: %v\n%s", gone, err, out.String())
		}
		after, err := pki.LoadCRL(c.Paths)
		if err != nil || after == nil {
			t.Fatalf("after removing %v: CRL %v, %v", gone, after, err)
		}
		if after.Number.Cmp(before.Number) <= 0 || !after.Has(serial) || len(after.Revoked) < len(before.Revoked) {
			t.Errorf("after removing %v: CRL number %v (was %v), %d revoked (was %d), has %s: %v\n%s",
				gone, after.Number, before.Number, len(after.Revoked), len(before.Revoked), serial, after.Has(serial), out.String())
		}
		if _, err := os.Lstat(c.Paths.CRL()); err != nil {
			t.Errorf("after removing %v: the link %s is not restored: %v", gone, c.Paths.CRL(), err)
		}
		for _, n := range c.Spec.Nodes {
			if b, _ := os.ReadFile(c.Paths.NodeCRL(n.Name)); !bytes.Equal(b, mustRead(t, c.Paths.CRL())) {
				t.Errorf("after removing %v: %s's CRL differs from the CA's", gone, n.Name)
			}
		}
		wantRefused(t, c, c.Spec, "the revoked etcd-admin pair", old)
		before = after
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testSeveralSerials revokes three serials no longer in use in one run:
// one CRL (its number grows by one), one deploy, and every member refuses
// each of them.
func testSeveralSerials(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	var olds []tls.Certificate
	var serials []string
	for range 3 {
		tg, pair, serial := pairOf(t, c.Spec, "apiserver-etcd-client")
		if _, err := issue.Renew(ctx, pki.New(c.Spec), []pki.Target{tg}, issue.RenewOptions{}); err != nil {
			t.Fatal(err)
		}
		olds, serials = append(olds, pair), append(serials, serial)
	}
	before, err := pki.LoadCRL(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Revoke(ctx, pki.New(c.Spec), Options{Serials: serials, Reason: "superseded", Out: &out})
	if err != nil {
		t.Fatalf("revoke: %v\n%s", err, out.String())
	}
	after, _ := pki.LoadCRL(c.Paths)
	if want := new(big.Int).Add(before.Number, big.NewInt(1)); after.Number.Cmp(want) != 0 || len(res.Revoked) != 3 {
		t.Errorf("CRL number %v (was %v), %d new entries: want one CRL with the 3\n%s", after.Number, before.Number, len(res.Revoked), out.String())
	}
	if n := strings.Count(out.String(), "[crl] published CRL number"); n != 1 {
		t.Errorf("%d CRLs published, want 1\n%s", n, out.String())
	}
	for i, old := range olds {
		if !after.Has(serials[i]) {
			t.Errorf("CRL lacks %s", serials[i])
		}
		wantRefused(t, c, c.Spec, "replaced apiserver pair "+serials[i], old)
	}
}
