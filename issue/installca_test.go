package issue

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/pki"
)

// TestInstallCABundleOnlyWhatKeepsTheHostWorking: the old and the new CA
// together are installed (the host's pairs verify under the old); the
// new CA alone is refused while the pairs are the old CA's, and so is a
// leaf or a key; each refusal leaves the host directory as it was, and
// the same bytes again change nothing.
func TestInstallCABundleOnlyWhatKeepsTheHostWorking(t *testing.T) {
	s, authority, other := treeAndTwoCAs(t)
	b, ts := hostBundle(t, s, "etcd-node-1")
	leaf, key := signFor(t, authority, s, ts[0], nil)
	before := contents(t, b.Root)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"the new CA alone", other.CertPEM, "would not verify under it"},
		{"a leaf", leaf, "is not a CA certificate"},
		{"a key", append(append([]byte{}, authority.CertPEM...), key...), "private key"},
		{"nothing", []byte("junk"), "no certificate"},
	} {
		if _, err := InstallCABundle(b, ts, c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
		if after := contents(t, b.Root); after != before {
			t.Fatalf("%s: refused, but the host directory changed:\n%s", c.name, diffLines(before, after))
		}
	}
	both := append(append(append([]byte{}, authority.CertPEM...), '\n'), other.CertPEM...)
	changed, err := InstallCABundle(b, ts, both)
	if err != nil || !changed {
		t.Fatalf("old + new: changed %v, %v", changed, err)
	}
	if got, _ := os.ReadFile(b.CAPath()); !bytes.Equal(got, both) {
		t.Errorf("ca.crt holds %q, want both CAs", got)
	}
	cas, err := pki.BundleCAs(b.CADir)
	if err != nil || len(cas) != 2 {
		t.Errorf("bundle CAs %d (%v), want 2", len(cas), err)
	}
	if changed, err := InstallCABundle(b, ts, both); err != nil || changed {
		t.Errorf("the same bytes again: changed %v, %v; want nothing changed", changed, err)
	}
}
