package issue

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/pki"
)

// hostBundle deploys node's bundle to a host directory of its own, as a
// deploy template's rsync does, and returns it as pki reads it there.
func hostBundle(t *testing.T, s *cluster.Spec, owner string) (pki.Bundle, []pki.Target) {
	t.Helper()
	inv := pki.New(s)
	b, _ := inv.Bundle(owner)
	host := filepath.Join(t.TempDir(), "host", "pki")
	copyTree(t, b.Root, host)
	hb, ts, err := inv.OnHost(owner, host)
	if err != nil {
		t.Fatal(err)
	}
	return hb, ts
}

func signFor(t *testing.T, a *ca.CA, s *cluster.Spec, tg pki.Target, edit func(*ca.Request)) (certPEM, keyPEM []byte) {
	t.Helper()
	r := ca.Request{Kind: tg.Kind, CommonName: tg.CommonName, Organization: tg.Organization, Hosts: tg.Hosts, Key: s.Leaf.Key, Validity: s.Leaf.Validity}
	if edit != nil {
		edit(&r)
	}
	c, k, err := a.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// TestInstallPairSwitchesThePairAndKeepsTheStore: a good pair is in
// effect through the store's links, its key 0600, and the store's other
// files are as they were.
func TestInstallPairSwitchesThePairAndKeepsTheStore(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	authority, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	b, ts := hostBundle(t, s, "etcd-node-1")
	server := ts[0]
	if !strings.HasPrefix(server.Dir, b.Root) || server.Kind.Name != ca.KindServer.Name {
		t.Fatalf("target %s not re-rooted at %s: %s", server.ID, b.Root, server.Dir)
	}
	peerBefore, _, _ := pki.ReadTargetPair(ts[1])
	caBefore, _ := os.ReadFile(b.CAPath())
	certPEM, keyPEM := signFor(t, authority, s, server, nil)
	if err := InstallPair(server, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	gotCert, gotKey, err := pki.ReadTargetPair(server)
	if err != nil || !bytes.Equal(gotCert, certPEM) || !bytes.Equal(gotKey, keyPEM) {
		t.Fatalf("pair in effect is not the installed one (err %v)", err)
	}
	if m := mode(t, server.KeyPath()); m != 0o600 {
		t.Errorf("key mode %04o, want 0600", m)
	}
	if peer, _, _ := pki.ReadTargetPair(ts[1]); !bytes.Equal(peer, peerBefore) {
		t.Error("the peer pair changed with the server's")
	}
	if ca, _ := os.ReadFile(b.CAPath()); !bytes.Equal(ca, caBefore) {
		t.Error("ca.crt changed")
	}
	if _, err := os.Stat(filepath.Join(b.CADir, pki.CRLFile)); err != nil {
		t.Errorf("crl.der not kept: %v", err)
	}
}

// TestInstallPairRefusesChangesNothing: each pair that must not go into
// effect is refused with its reason, and the host directory is byte for
// byte as it was.
func TestInstallPairRefusesChangesNothing(t *testing.T) {
	s, authority, other := treeAndTwoCAs(t)
	b, ts := hostBundle(t, s, "etcd-node-1")
	server := ts[0]
	good, _ := signFor(t, authority, s, server, nil)
	_, otherKey := signFor(t, authority, s, server, nil)
	cases := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"key of another pair", good, otherKey, "is not for the new key"},
		{"another CA", nil, nil, "does not chain to"},
		{"other SANs", nil, nil, "SANs"},
		{"other CN", nil, nil, "CN"},
		{"client usage only", nil, nil, "does not chain to"},
	}
	cases[1].cert, cases[1].key = signFor(t, other, s, server, nil)
	cases[2].cert, cases[2].key = signFor(t, authority, s, server, func(r *ca.Request) { r.Hosts = append(r.Hosts, "10.0.0.12") })
	cases[3].cert, cases[3].key = signFor(t, authority, s, server, func(r *ca.Request) { r.CommonName = "etcd-node-2" })
	cases[4].cert, cases[4].key = signFor(t, authority, s, server, func(r *ca.Request) { r.Kind = ca.KindClient })
	before := contents(t, b.Root)
	for _, c := range cases {
		err := InstallPair(server, c.cert, c.key)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
		if after := contents(t, b.Root); after != before {
			t.Fatalf("%s: refused, but the host directory changed:\n%s", c.name, diffLines(before, after))
		}
	}
}

// TestInstallCRLNeverGoesBack: a CRL is installed only when it parses,
// a CA of the bundle signed it, and its number is not below the
// installed one's; each refusal leaves the bundle as it was.
func TestInstallCRLNeverGoesBack(t *testing.T) {
	s, authority, other := treeAndTwoCAs(t)
	b, _ := hostBundle(t, s, "etcd-node-1")
	installed, err := pki.ReadStored(b.CADir, pki.CRLFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := pki.ParseCRL(installed)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(a *ca.CA, n *big.Int, serials ...int64) []byte {
		var rs []ca.Revocation
		for _, sn := range serials {
			rs = append(rs, ca.Revocation{Serial: big.NewInt(sn), When: time.Now()})
		}
		d, err := a.SignCRL(rs, n, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	next := new(big.Int).Add(l.Number, big.NewInt(5))
	lower := new(big.Int).Sub(next, big.NewInt(1))
	before := contents(t, b.Root)
	for _, c := range []struct {
		name string
		crl  []byte
		want string
	}{
		{"not a CRL", []byte("-----BEGIN X509 CRL-----\n"), "not a DER CRL"},
		{"another CA", sign(other, next, 7), "not signed by a CA in"},
	} {
		if err := InstallCRL(b, c.crl); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
		if after := contents(t, b.Root); after != before {
			t.Fatalf("%s: refused, but the bundle changed:\n%s", c.name, diffLines(before, after))
		}
	}
	newer := sign(authority, next, 7)
	if err := InstallCRL(b, newer); err != nil {
		t.Fatal(err)
	}
	if got, _ := pki.ReadStored(b.CADir, pki.CRLFile); !bytes.Equal(got, newer) {
		t.Fatal("the newer CRL is not in effect")
	}
	if revoked, err := pki.RevokedInBundle(b.CADir, "7"); err != nil || !revoked {
		t.Fatalf("serial 7 not revoked in the bundle (%v)", err)
	}
	before = contents(t, b.Root)
	if err := InstallCRL(b, sign(authority, lower)); err == nil || !strings.Contains(err.Error(), "lower than the installed") {
		t.Fatalf("an older CRL: got %v, want a refusal", err)
	}
	if after := contents(t, b.Root); after != before {
		t.Fatalf("older CRL refused, but the bundle changed:\n%s", diffLines(before, after))
	}
	// The installed number with other entries: CRL numbers are unique
	// (every signer counts up), so this is a CRL signed from an older
	// base, serial 7 missing; taking it would un-revoke serial 7.
	if err := InstallCRL(b, sign(authority, next)); err == nil || !strings.Contains(err.Error(), "is the installed CRL's number, with other contents") {
		t.Fatalf("another CRL with the installed number: got %v, want a refusal", err)
	}
	if after := contents(t, b.Root); after != before {
		t.Fatalf("another CRL with the installed number refused, but the bundle changed:\n%s", diffLines(before, after))
	}
	if err := InstallCRL(b, newer); err != nil {
		t.Fatalf("the installed CRL again: %v", err)
	}
}

// treeAndTwoCAs is a three-node PKI, its CA, and another CA of the same
// spec that signs nothing the bundles trust.
func treeAndTwoCAs(t *testing.T) (*cluster.Spec, *ca.CA, *ca.CA) {
	t.Helper()
	s, _ := initTree(t, threeNodes)
	authority, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s, authority, other
}

// TestInstallCRLCrashAtEveryStepConverges stops InstallCRL at each of its
// file-system steps: the bundle's crl.der is then the old CRL or the new
// one, whole (etcd refuses every connection on a torn one), and the next
// run installs the new one.
func TestInstallCRLCrashAtEveryStepConverges(t *testing.T) {
	s, authority, _ := treeAndTwoCAs(t)
	b, _ := hostBundle(t, s, "etcd-node-1")
	first, err := pki.ReadStored(b.CADir, pki.CRLFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(first)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; ; n++ {
		old, _ := pki.ReadStored(b.CADir, pki.CRLFile)
		number := new(big.Int).Add(l.Number, big.NewInt(int64(n)))
		crl, err := authority.SignCRL([]ca.Revocation{{Serial: big.NewInt(int64(100 + n)), Reason: 1, When: time.Now()}}, number, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		stopped := crashpoint.RunUntilStepIn(t, b.Root, n, func() error { return InstallCRL(b, crl) })
		got, err := pki.ReadStored(b.CADir, pki.CRLFile)
		if err != nil || !bytes.Equal(got, old) && !bytes.Equal(got, crl) {
			t.Fatalf("stopped at step %q: crl.der is neither the old CRL nor the new one (%v)", stopped, err)
		}
		if stopped == "" {
			if n < 2 {
				t.Fatalf("InstallCRL took %d steps: the hook sees none of its writes", n-1)
			}
			t.Logf("InstallCRL took %d file-system steps; stopped at each", n-1)
			return
		}
		if err := InstallCRL(b, crl); err != nil {
			t.Fatalf("stopped at step %s, the next run: %v", stopped, err)
		}
		if got, _ := pki.ReadStored(b.CADir, pki.CRLFile); !bytes.Equal(got, crl) {
			t.Fatalf("stopped at step %s, the next run did not install the new CRL", stopped)
		}
	}
}
