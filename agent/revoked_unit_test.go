package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// A pair whose serial spec.revocations lists (in any hex spelling) is
// due at once, read from the pair on the host; the host's other pairs
// are not.
func TestARevokedSerialInUseIsDue(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := "name: t\npkiDir: " + filepath.Join(dir, "pki") + "\nnodes:\n  - {name: n1, ips: [127.0.0.1]}\n"
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	peer, _ := inv.Target("n1/etcd-peer")
	server, _ := inv.Target("n1/etcd-server")
	certPEM, _, err := pki.ReadTargetPair(peer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	var colons []string
	for _, b := range c.SerialNumber.Bytes() {
		colons = append(colons, strings.ToUpper(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15])))
	}
	ec := &v1alpha1.EtcdCluster{}
	if revokedInUse(ec) != nil {
		t.Error("no revocation: want no check at all")
	}
	ec.Spec.Revocations = []v1alpha1.RevocationSpec{{Serial: strings.Join(colons, ":"), Reason: "keyCompromise"}}
	due := either(nil, revokedInUse(ec))
	if ok, why := due(peer); !ok || !strings.Contains(why, "in spec.revocations (keyCompromise)") {
		t.Errorf("the revoked peer pair: due %v (%s)", ok, why)
	}
	if ok, why := due(server); ok {
		t.Errorf("the server pair is due: %s", why)
	}
}
