package issue

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/pki"
)

// checkNoConfigNamesABadCRL is the outage guard: a node whose etcd.env
// names a CRL must have that CRL in its bundle, parsing as etcd parses it
// (read through the public link, as etcd opens it).
func checkNoConfigNamesABadCRL(t *testing.T, s *cluster.Spec, when string) {
	t.Helper()
	p := pki.Paths{PKI: s.PKIDir}
	for _, n := range s.Nodes {
		data, err := os.ReadFile(p.NodeEnv(n.Name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		env, err := pki.ParseEnv(data)
		if err != nil {
			t.Fatalf("%s: %s: %v", when, p.NodeEnv(n.Name), err)
		}
		for _, k := range []string{"ETCD_CLIENT_CRL_FILE", "ETCD_PEER_CRL_FILE"} {
			if want := filepath.Join(n.CertDir(), pki.CRLFile); env[k] != want {
				t.Fatalf("%s: %s: %s=%q, want %q", when, p.NodeEnv(n.Name), k, env[k], want)
			}
		}
		crl, err := os.ReadFile(p.NodeCRL(n.Name))
		if err != nil {
			t.Fatalf("%s: %s names a CRL but the bundle's is unreadable (etcd would refuse every connection): %v", when, p.NodeEnv(n.Name), err)
		}
		if _, err := pki.ParseCRL(crl); err != nil {
			t.Fatalf("%s: %s names a CRL that does not parse (etcd would refuse every connection): %v", when, p.NodeEnv(n.Name), err)
		}
	}
}

// TestCRLWriteInterruptedNeverNamesABadCRL stops init, and then a
// revocation, at each of their filesystem steps in turn, as a kill would:
// after every stop, no node's config names a missing or unparsable CRL,
// and the next run converges on one CRL, the same in the CA's store and
// every bundle, holding the serial.
func TestCRLWriteInterruptedNeverNamesABadCRL(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	add := []pki.Revoked{{Name: "test", Serial: "1234abcd", Reason: "keyCompromise", When: time.Now()}}
	// Two nodes: the guard is per node, and every step is one more init.
	const twoNodes = "name: test\nnodes:\n  - {name: etcd-node-1, ips: [10.0.0.11]}\n  - {name: etcd-node-2, ips: [10.0.0.12]}\n"
	template := spec(t, twoNodes, filepath.Join(ramdir.TempDir(t), "pki"))
	if _, err := Init(ctx, pki.New(template), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"init", "revoke"} {
		steps := 0
		for n := 1; ; n++ {
			s := spec(t, twoNodes, filepath.Join(ramdir.TempDir(t), "pki"))
			if phase == "revoke" {
				// A copy of one initialised tree (links and modes kept):
				// no key is generated per crash point.
				if out, err := exec.Command("cp", "-a", template.PKIDir, s.PKIDir).CombinedOutput(); err != nil {
					t.Fatalf("copy the PKI: %v: %s", err, out)
				}
			}
			stopped := crashpoint.RunUntilStepIn(t, s.PKIDir, n, func() error {
				if phase == "init" {
					_, err := Init(ctx, pki.New(s), Options{})
					return err
				}
				_, err := RevokeSerials(ctx, pki.New(s), add, Options{})
				return err
			})
			if stopped == "" {
				break
			}
			steps++
			checkNoConfigNamesABadCRL(t, s, phase+" stopped at "+stopped)
			if _, err := Init(ctx, pki.New(s), Options{}); err != nil {
				t.Fatalf("%s stopped at %s: init again: %v", phase, stopped, err)
			}
			checkNoConfigNamesABadCRL(t, s, phase+" stopped at "+stopped+", then init")
			res, err := RevokeSerials(ctx, pki.New(s), add, Options{})
			if err != nil {
				t.Fatalf("%s stopped at %s: revoke again: %v", phase, stopped, err)
			}
			p := pki.Paths{PKI: s.PKIDir}
			crl, err := pki.LoadCRL(p)
			if err != nil || !crl.Has("1234abcd") {
				t.Fatalf("%s stopped at %s, then revoke: CRL %v lacks the serial (result %+v)", phase, stopped, err, res)
			}
			want, _ := os.ReadFile(p.CRL())
			for _, nd := range s.Nodes {
				if got, _ := os.ReadFile(p.NodeCRL(nd.Name)); !bytes.Equal(got, want) {
					t.Fatalf("%s stopped at %s: %s differs from the CA's CRL", phase, stopped, p.NodeCRL(nd.Name))
				}
			}
			if e, _ := crl.Entry("1234abcd"); e.Name != "test" || e.Reason != "keyCompromise" {
				t.Fatalf("entry %+v, want name test, reason keyCompromise", e)
			}
		}
		if steps < 10 {
			t.Fatalf("%s: only %d crash points: the hook is not reached", phase, steps)
		}
		t.Logf("%s: %d crash points", phase, steps)
	}
}

// TestRevokeSerialsTwiceChangesNothing: the second revocation of a serial
// writes no byte.
func TestRevokeSerialsTwiceChangesNothing(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	ctx := context.Background()
	add := []pki.Revoked{{Serial: "abc", Reason: "superseded", When: time.Now()}}
	first, err := RevokeSerials(ctx, pki.New(s), add, Options{})
	if err != nil || !first.Changed || len(first.Added) != 1 {
		t.Fatalf("first revoke: %+v, %v", first, err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	before, _ := os.ReadFile(p.CRL())
	second, err := RevokeSerials(ctx, pki.New(s), add, Options{})
	if err != nil || second.Changed || len(second.Added) != 0 {
		t.Fatalf("second revoke: %+v, %v", second, err)
	}
	after, _ := os.ReadFile(p.CRL())
	if !bytes.Equal(before, after) {
		t.Fatal("the second revoke rewrote the CRL")
	}
	if first.CRL.Number.Int64() != 2 {
		t.Errorf("CRL number %v, want 2 (init signed 1)", first.CRL.Number)
	}
}

// TestCRLInABundleNeverUnparsable: a CRL that does not parse is refused
// before any store switches (a PEM CRL too: etcd reads DER only).
func TestCRLInABundleNeverUnparsable(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	good, _ := os.ReadFile(p.CRL())
	for _, bad := range [][]byte{nil, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), good[:len(good)/2]} {
		if err := checkStore(map[string][]byte{pki.CRLFile: bad}); err == nil {
			t.Errorf("checkStore accepted a CRL of %d bytes etcd cannot parse", len(bad))
		}
	}
	// A CA CRL that does not parse is an input error, and init writes
	// nothing over it.
	cur, err := atomicdir.Current(p.CADir())
	if err != nil || cur == "" {
		t.Fatalf("the CA's store has no version in effect: %v", err)
	}
	if err := os.Chmod(cur, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cur, pki.CRLFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Init(context.Background(), pki.New(s), Options{})
	var ie *input.Error
	if !errors.As(err, &ie) {
		t.Fatalf("init over an unparsable CRL: %v, want an input error", err)
	}
	for _, n := range s.Nodes {
		if got, _ := os.ReadFile(p.NodeCRL(n.Name)); !bytes.Equal(got, good) {
			t.Errorf("%s changed", p.NodeCRL(n.Name))
		}
	}
}

// TestListShowsRevokedAndFailsOnABadBundleCRL: certs list's rows name a
// revoked certificate in place invalid, list each revoked serial with its
// name, reason and time, and a bundle whose config names a CRL that is
// gone is an invalid row and an error.
func TestListShowsRevokedAndFailsOnABadBundleCRL(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	now := time.Now()
	inv := pki.New(s)
	infos, err := pki.List(inv, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	var peer pki.CertInfo
	for _, i := range infos {
		if i.Name == "etcd-node-2/etcd-peer" {
			peer = i
		}
	}
	add := []pki.Revoked{{Name: peer.Name, Serial: peer.Serial, Reason: "keyCompromise", When: now}}
	if _, err := RevokeSerials(context.Background(), pki.New(s), add, Options{}); err != nil {
		t.Fatal(err)
	}
	infos, _ = pki.List(inv, 0, now)
	rows, err := pki.WithCRL(inv, infos, now)
	if err != nil {
		t.Fatalf("pki.WithCRL: %v", err)
	}
	seen := map[string]pki.CertInfo{}
	for _, r := range rows {
		seen[r.Name] = r
	}
	if r := seen["etcd-node-2/etcd-peer"]; r.Status != pki.StatusInvalid || !strings.HasPrefix(r.Reason, "revoked (keyCompromise") {
		t.Errorf("revoked peer certificate in place: %s %q", r.Status, r.Reason)
	}
	if r := seen["revoked etcd-node-2/etcd-peer"]; r.Status != pki.StatusRevoked || r.Serial != peer.Serial || !strings.HasPrefix(r.Reason, "keyCompromise, revoked ") {
		t.Errorf("revoked row: %+v", r)
	}
	if r := seen[pki.CRLRow]; r.Status != pki.StatusOK || r.Reason != "1 revoked" {
		t.Errorf("crl row: %+v", r)
	}
	p := pki.Paths{PKI: s.PKIDir}
	if err := os.Remove(p.NodeCRL("etcd-node-3")); err != nil {
		t.Fatal(err)
	}
	rows, err = pki.WithCRL(inv, infos, now)
	var be *pki.BundleCRLError
	if !errors.As(err, &be) || len(be.Problems) != 1 || !strings.Contains(be.Problems[0], "etcd-node-3") {
		t.Fatalf("a bundle whose etcd.env names a missing CRL: %v", err)
	}
	found := false
	for _, r := range rows {
		found = found || r.Name == "etcd-node-3/"+pki.CRLRow && r.Status == pki.StatusInvalid
	}
	if !found {
		t.Error("no invalid row for etcd-node-3's missing CRL")
	}
}

// TestCRLDropsExpiredEntriesAndKeepsTheirHistory: an entry whose
// certificate expired leaves the CRL once a whole CRL validity passed
// its notAfter (a CRL signed after its expiry listed it), and stays in
// revoked.json; an entry whose notAfter is not known stays in the CRL.
// Revoking a dropped serial again adds nothing back.
func TestCRLDropsExpiredEntriesAndKeepsTheirHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := initTree(t, "nodes:\n  - {name: etcd-node-1, ips: [10.0.0.11]}\n")
	inv := pki.New(s)
	now := time.Now()
	add := []pki.Revoked{
		{Name: "soon", Serial: "a1", Reason: "superseded", When: now, NotAfter: now.Add(time.Hour)},
		{Name: "later", Serial: "b2", Reason: "superseded", When: now, NotAfter: now.Add(365 * 24 * time.Hour)},
		{Serial: "c3", Reason: "keyCompromise", When: now},
	}
	first, err := RevokeSerials(ctx, inv, add, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.CRL.Revoked) != 3 {
		t.Fatalf("CRL holds %d entries, want 3", len(first.CRL.Revoked))
	}
	// Past a1's notAfter plus a whole CRL validity.
	later := now.Add(time.Hour + s.CRLValidity() + time.Minute)
	res, err := ResignCRL(ctx, inv, nil, Options{Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.LoadCRL(inv.Paths)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Has("a1") || !crl.Has("b2") || !crl.Has("c3") || crl.Number.Cmp(first.CRL.Number) <= 0 {
		t.Errorf("CRL after a1 expired: %+v number %v (was %v), want b2 and c3 only", crl.Revoked, crl.Number, first.CRL.Number)
	}
	if e, ok := crl.Ever("a1"); !ok || e.Name != "soon" || e.NotAfter.IsZero() {
		t.Errorf("revoked.json lost a1's history: %+v %v", e, ok)
	}
	if len(res.CRL.History) != 3 {
		t.Errorf("history holds %d entries, want 3", len(res.CRL.History))
	}
	again, err := RevokeSerials(ctx, inv, add[:1], Options{Now: func() time.Time { return later }})
	if err != nil || again.Changed || len(again.Added) != 0 {
		t.Errorf("revoking the expired a1 again: %+v, %v; want nothing written", again, err)
	}
	node, _ := os.ReadFile(inv.Paths.NodeCRL("etcd-node-1"))
	if ca, _ := os.ReadFile(inv.Paths.CRL()); !bytes.Equal(node, ca) {
		t.Error("the node's CRL differs from the CA's")
	}
}

// TestLostCRLRebuildInterruptedNeverUnrevokes deletes the CA's crl.der
// (store and link), then stops rotate's upkeep (KeepCRL) at each of its
// filesystem steps in turn, as a kill would: after every stop, every
// bundle's CRL still revokes the serial and parses; the next upkeep
// rebuilds the CA's CRL with the serial, numbered above every CRL seen,
// the same in every bundle.
func TestLostCRLRebuildInterruptedNeverUnrevokes(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	const twoNodes = "name: test\nnodes:\n  - {name: etcd-node-1, ips: [10.0.0.11]}\n  - {name: etcd-node-2, ips: [10.0.0.12]}\n"
	template := spec(t, twoNodes, filepath.Join(t.TempDir(), "pki"))
	if _, err := Init(ctx, pki.New(template), Options{}); err != nil {
		t.Fatal(err)
	}
	add := []pki.Revoked{{Name: "test", Serial: "1234abcd", Reason: "keyCompromise", When: time.Now()}}
	first, err := RevokeSerials(ctx, pki.New(template), add, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p0 := pki.Paths{PKI: template.PKIDir}
	for _, gone := range []string{filepath.Join(p0.CADir(), "..ca.store", "..data", pki.CRLFile), p0.CRL()} {
		if err := os.Remove(gone); err != nil {
			t.Fatal(err)
		}
	}
	steps := 0
	for n := 1; ; n++ {
		s := spec(t, twoNodes, filepath.Join(t.TempDir(), "pki"))
		if out, err := exec.Command("cp", "-a", template.PKIDir, s.PKIDir).CombinedOutput(); err != nil {
			t.Fatalf("copy the PKI: %v: %s", err, out)
		}
		p := pki.Paths{PKI: s.PKIDir}
		stopped := crashpoint.RunUntilStep(t, n, func() error {
			_, err := KeepCRL(ctx, pki.New(s), time.Now(), false)
			return err
		})
		if stopped == "" {
			break
		}
		steps++
		checkNoConfigNamesABadCRL(t, s, "upkeep stopped at "+stopped)
		for _, nd := range s.Nodes {
			l, err := pki.ParseCRL(mustReadFile(t, p.NodeCRL(nd.Name)))
			if err != nil || len(l.RevokedCertificateEntries) != 1 || l.Number.Cmp(first.CRL.Number) < 0 {
				t.Fatalf("upkeep stopped at %s: %s revokes %d serials, number %v (was %v): %v", stopped, nd.Name, len(l.RevokedCertificateEntries), l.Number, first.CRL.Number, err)
			}
		}
		if _, err := KeepCRL(ctx, pki.New(s), time.Now(), false); err != nil {
			t.Fatalf("upkeep stopped at %s, then again: %v", stopped, err)
		}
		crl, err := pki.LoadCRL(p)
		if err != nil || crl == nil || !crl.Has("1234abcd") || crl.Number.Cmp(first.CRL.Number) <= 0 {
			t.Fatalf("upkeep stopped at %s, then again: CRL %+v, %v: want the serial, numbered above %v", stopped, crl, err, first.CRL.Number)
		}
		if e, _ := crl.Entry("1234abcd"); e.Name != "test" {
			t.Errorf("upkeep stopped at %s: entry %+v lost its name", stopped, e)
		}
		want := mustReadFile(t, p.CRL())
		for _, nd := range s.Nodes {
			if got := mustReadFile(t, p.NodeCRL(nd.Name)); !bytes.Equal(got, want) {
				t.Fatalf("upkeep stopped at %s: %s differs from the CA's CRL", stopped, nd.Name)
			}
		}
	}
	if steps < 5 {
		t.Fatalf("only %d crash points: the hook is not reached", steps)
	}
	t.Logf("%d crash points", steps)
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
