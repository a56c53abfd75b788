package member_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
)

// TestMemberRemoveRevokesEveryCertificateOfTheNode: after member remove,
// every certificate the removed host holds a key for is refused on every
// remaining member's client and peer port: its server and peer pairs, its
// healthcheck client (with which etcdctl put would still work), a pair a
// renewal replaced, and what `etcdpki issue` issued for its address. A
// certificate issued to another host stays accepted.
func TestMemberRemoveRevokesEveryCertificateOfTheNode(t *testing.T) {
	c := livetest.RevokeCluster(t)
	ctx := context.Background()
	name := etcdtest.NodeName(3)
	n, _ := c.Spec.Node(name)
	ip := n.IPs[0].String()
	if ip == "127.0.0.1" {
		t.Fatalf("%s is on %s, which every server certificate names", name, ip)
	}
	// A renewal keeps the replaced healthcheck pair in PKI/backup; the
	// host had that key too.
	replaced := livetest.HoldPairs(t, c.Spec, name+"/etcd-healthcheck-client")
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{name + "/etcd-healthcheck-client"})
	if _, err := issue.Renew(ctx, pki.New(c.Spec), targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	held := livetest.HoldPairs(t, c.Spec, name+"/etcd-healthcheck-client", name+"/etcd-server", name+"/etcd-peer")
	// etcd's peer port checks a client certificate's IP SANs against the
	// address it dials from (127.0.0.1 here): naming it too keeps the
	// refusal below the CRL's.
	gw := livetest.IssuedPair(t, c, "server", "etcd-gw-3", ip, "127.0.0.1")
	other := livetest.IssuedPair(t, c, "client", "ops-admin")
	for _, h := range held {
		livetest.CheckVerdicts(t, c, h.ID+" before the removal", h.Pair, true)
	}
	livetest.CheckVerdicts(t, c, "etcd-gw-3 before the removal", gw, true)
	// The files the removed host keeps, for etcdctl afterwards.
	hcTarget, _ := pki.New(c.Spec).Target(name + "/etcd-healthcheck-client")
	hc := t.TempDir()
	certFile, keyFile := filepath.Join(hc, "hc.crt"), filepath.Join(hc, "hc.key")
	for from, to := range map[string]string{hcTarget.CertPath(): certFile, hcTarget.KeyPath(): keyFile} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Etcdctl(ctx, certFile, keyFile, "put", "/before", "x"); err != nil {
		t.Fatalf("etcdctl put with the healthcheck client before the removal: %v", err)
	} else if !strings.Contains(got, "OK") {
		t.Fatalf("etcdctl put before the removal: %q", got)
	}

	c.RemoveNode(t, name)
	var out bytes.Buffer
	if _, err := member.Remove(ctx, pki.New(c.Spec), member.Options{Name: name, Out: &out}); err != nil {
		t.Fatalf("member remove: %v\n%s", err, out.String())
	}
	t.Logf("member remove:\n%s", out.String())
	for _, h := range append(held, replaced...) {
		livetest.CheckVerdicts(t, c, h.ID+" of the removed member", h.Pair, false)
	}
	livetest.CheckVerdicts(t, c, "etcd-gw-3, issued for the removed host's address", gw, false)
	livetest.CheckVerdicts(t, c, "ops-admin, issued to another holder", other, true)

	// etcdctl with the removed host's healthcheck client: refused.
	if got, err := c.Etcdctl(ctx, certFile, keyFile, "put", "/removed", "x"); err == nil || strings.Contains(got, "OK") {
		t.Errorf("etcdctl put with the removed host's healthcheck client: %q %v, want refused", got, err)
	}
}
