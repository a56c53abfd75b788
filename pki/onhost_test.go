package pki

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
)

// TestOnHostRerootsTheBundle: every path of an owner's bundle lies under
// the host directory where the PKI directory's copy lies under the
// bundle's root, the IDs and SANs stay the spec's, and an owner without a
// bundle of its own is refused by name.
func TestOnHostRerootsTheBundle(t *testing.T) {
	s := loadExample(t)
	inv := New(s)
	host := filepath.Join(t.TempDir(), "etc", "kubernetes", "pki")
	for _, b := range inv.Bundles {
		hb, ts, err := inv.OnHost(b.Owner, host)
		if err != nil {
			t.Fatal(err)
		}
		if hb.Root != host || hb.Node != b.Node || len(ts) != len(b.Targets) {
			t.Fatalf("%s: bundle on host %+v", b.Owner, hb)
		}
		if want := filepath.Join(host, strings.TrimPrefix(b.CADir, b.Root)); hb.CADir != want {
			t.Errorf("%s: CA dir %s, want %s", b.Owner, hb.CADir, want)
		}
		for i, tg := range ts {
			orig, _ := inv.Target(b.Targets[i])
			if tg.ID != orig.ID || tg.CommonName != orig.CommonName || strings.Join(tg.Hosts, ",") != strings.Join(orig.Hosts, ",") {
				t.Errorf("%s: target changed beyond its paths: %+v", orig.ID, tg)
			}
			rel, _ := filepath.Rel(b.Root, orig.CertPath())
			if tg.CertPath() != filepath.Join(host, rel) || !strings.HasPrefix(tg.KeyPath(), host+"/") || !strings.HasPrefix(tg.CAPath(), host+"/") {
				t.Errorf("%s: on host at %s, %s, %s; want under %s", tg.ID, tg.CertPath(), tg.KeyPath(), tg.CAPath(), host)
			}
			if tg.Held != "" {
				t.Errorf("%s: a host target has no held record, got %s", tg.ID, tg.Held)
			}
		}
	}
	for _, owner := range []string{"etcd-node-9", cluster.ClientHealthcheck} {
		if _, _, err := inv.OnHost(owner, host); err == nil || !strings.Contains(err.Error(), owner) {
			t.Errorf("owner %s: got %v, want a refusal naming it", owner, err)
		}
	}
}
