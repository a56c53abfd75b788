package pki

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
)

func loadExample(t *testing.T) *cluster.Spec {
	t.Helper()
	s, err := cluster.Load("../examples/three-node.yaml", cluster.Options{PKIDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInventoryFollowsCatalogue checks invariants over the whole list, as
// kubeadm's certlist tests do: every PerNode kind once per node, every
// client one certificate of the kind named for it or the PerClient kind,
// unique IDs, every file inside the PKI directory and in its owner's
// bundle, and the CN and usages taken from the catalogue.
func TestInventoryFollowsCatalogue(t *testing.T) {
	s := loadExample(t)
	inv := New(s)
	perNode := 0
	for _, k := range ca.Catalogue() {
		if k.PerNode {
			perNode++
		}
	}
	extra := 0
	for _, c := range s.Clients {
		if c.Name != cluster.ClientAPIServer && c.Name != cluster.ClientHealthcheck {
			extra++
		}
	}
	if want := perNode*len(s.Nodes) + 1 + extra; len(inv.Targets) != want {
		t.Fatalf("%d targets, want %d: %v", len(inv.Targets), want, IDs(inv.Targets))
	}
	if len(inv.Bundles) != len(s.Nodes)+1+extra {
		t.Fatalf("%d bundles, want one per node and per non-healthcheck client", len(inv.Bundles))
	}
	seen := map[string]bool{}
	for _, tg := range inv.Targets {
		if seen[tg.ID] {
			t.Errorf("duplicate ID %s", tg.ID)
		}
		seen[tg.ID] = true
		b, ok := inv.Bundle(tg.Owner)
		if !ok {
			t.Errorf("%s: owner %s has no bundle", tg.ID, tg.Owner)
			continue
		}
		if !strings.HasPrefix(tg.CertPath(), b.Root+string(filepath.Separator)) || b.CAPath() != tg.CAPath() {
			t.Errorf("%s: %s / %s not in bundle %s", tg.ID, tg.CertPath(), tg.CAPath(), b.Root)
		}
		if tg.Kind.CommonName != "" && tg.CommonName != tg.Kind.CommonName {
			t.Errorf("%s: CN %q, catalogue says %q", tg.ID, tg.CommonName, tg.Kind.CommonName)
		}
		if tg.Usage() != tg.Kind.Usages[0] {
			t.Errorf("%s: usage %v", tg.ID, tg.Usage())
		}
		for _, p := range []string{tg.CertPath(), tg.KeyPath(), tg.CAPath()} {
			if !strings.HasPrefix(p, s.PKIDir+string(filepath.Separator)) {
				t.Errorf("%s: file %s outside %s", tg.ID, p, s.PKIDir)
			}
		}
	}
	for _, id := range []string{"etcd-node-2/etcd-peer", "apiserver-etcd-client", "client/etcd-admin"} {
		if !seen[id] {
			t.Errorf("no target %s in %v", id, IDs(inv.Targets))
		}
	}
}

// TestAPIServerOnHost checks the apiserver's files as its host sees them
// (kubeadm's names under the client's dir), which the flags file prints.
func TestAPIServerOnHost(t *testing.T) {
	inv := New(loadExample(t))
	b, _ := inv.Bundle(cluster.ClientAPIServer)
	tg, ok := inv.Target(ca.KindAPIServer.Name)
	if !ok {
		t.Fatal("no apiserver target")
	}
	if got := b.OnHost("/etc/kubernetes/pki", tg.CertPath()); got != "/etc/kubernetes/pki/apiserver-etcd-client.crt" {
		t.Errorf("cert on host %s", got)
	}
	if got := b.OnHost("/etc/kubernetes/pki", b.CAPath()); got != "/etc/kubernetes/pki/etcd/ca.crt" {
		t.Errorf("CA on host %s", got)
	}
}

func TestShortSerial(t *testing.T) {
	for in, want := range map[string]string{"": "(none)", "abc": "abc", "0123456789abcdef": "0123456789ab"} {
		if got := ShortSerial(in); got != want {
			t.Errorf("ShortSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
