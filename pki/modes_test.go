package pki_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestLooseModesAreFindings loosens a node's key, the node's directory
// and the CA key, as a careless copy or chmod would: LooseModes names
// each with the mode etcdpki keeps it at, and certs list's rows for them
// carry the warning while staying ok; a fresh PKI has none.
func TestLooseModesAreFindings(t *testing.T) {
	s, err := cluster.Load("../examples/three-node.yaml", cluster.Options{PKIDir: filepath.Join(t.TempDir(), "pki")})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{}); err != nil {
		t.Fatal(err)
	}
	if l := inv.LooseModes(); len(l) != 0 {
		t.Fatalf("a fresh PKI has loose modes: %v", l)
	}
	peer, _ := inv.Target("etcd-node-2/etcd-peer")
	for path, mode := range map[string]os.FileMode{peer.KeyPath(): 0o644, inv.Paths.NodeDir("etcd-node-2"): 0o755, inv.Paths.CAKey(): 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	found := map[string]pki.LooseMode{}
	for _, l := range inv.LooseModes() {
		found[l.Path] = l
	}
	for path, want := range map[string]os.FileMode{peer.KeyPath(): 0o600, inv.Paths.NodeDir("etcd-node-2"): 0o700, inv.Paths.CAKey(): 0o400} {
		if l, ok := found[path]; !ok || l.Want != want {
			t.Errorf("%s: finding %+v, want one wanting %04o", path, l, want)
		}
	}
	if len(found) != 3 {
		t.Errorf("%d findings, want 3: %v", len(found), found)
	}
	infos, err := pki.List(inv, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		want := ""
		switch in.Name {
		case "etcd-ca":
			want = inv.Paths.CAKey() + " is 0644, want 0400"
		case "etcd-node-2/etcd-peer":
			want = peer.KeyPath() + " is 0644, want 0600"
		case "etcd-node-2/etcd-server", "etcd-node-2/etcd-healthcheck-client":
			want = inv.Paths.NodeDir("etcd-node-2") + " is 0755, want 0700"
		}
		if in.Status != pki.StatusOK || !strings.Contains(in.Reason, want) || (want == "") != (in.Reason == "") {
			t.Errorf("%s: %s %q, want ok with %q", in.Name, in.Status, in.Reason, want)
		}
	}
}
