package issue

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
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

// TestInstallCABundleCrashAtEveryStepConverges stops the agent's ca.crt
// install at each of its file-system steps: ca.crt is the old CA or both
// CAs whole, never torn or missing, and the next run installs both.
func TestInstallCABundleCrashAtEveryStepConverges(t *testing.T) {
	s, authority, other := treeAndTwoCAs(t)
	both := append(append(append([]byte{}, authority.CertPEM...), '\n'), other.CertPEM...)
	for n := 1; ; n++ {
		b, ts := hostBundle(t, s, "etcd-node-1")
		old, err := os.ReadFile(b.CAPath())
		if err != nil {
			t.Fatal(err)
		}
		stopped := crashpoint.RunUntilStepIn(t, b.Root, n, func() error { _, err := InstallCABundle(b, ts, both); return err })
		got, err := os.ReadFile(b.CAPath())
		if err != nil || !bytes.Equal(got, old) && !bytes.Equal(got, both) {
			t.Fatalf("stopped at step %q: ca.crt is neither the old CA nor both (%v)", stopped, err)
		}
		if stopped == "" {
			if n < 2 {
				t.Fatalf("InstallCABundle took %d steps: the hook sees none of its writes", n-1)
			}
			t.Logf("InstallCABundle took %d file-system steps; stopped at each", n-1)
			return
		}
		if _, err := InstallCABundle(b, ts, both); err != nil {
			t.Fatalf("stopped at step %s, the next run: %v", stopped, err)
		}
		if got, _ := os.ReadFile(b.CAPath()); !bytes.Equal(got, both) {
			t.Fatalf("stopped at step %s, the next run did not install both CAs", stopped)
		}
	}
}
