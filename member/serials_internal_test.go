package member

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestRemovedSerialsAreTheNodesAlone: a removed node's serials are every
// pair of its bundle and what issue wrote for its own name or address;
// not a certificate for a DNS name every node shares (a load balancer's),
// nor another holder's.
func TestRemovedSerialsAreTheNodesAlone(t *testing.T) {
	s, err := cluster.FromFlags("t", []string{"etcd-1=127.0.0.11,etcd.lb.example", "etcd-2=127.0.0.12,etcd.lb.example", "etcd-3=127.0.0.13,etcd.lb.example"},
		cluster.Options{PKIDir: filepath.Join(t.TempDir(), "pki")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inv := pki.New(s)
	if _, err := issue.Init(ctx, inv, issue.Options{}); err != nil {
		t.Fatal(err)
	}
	serialOf := func(tg pki.Target) string {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(tg.CertPath(), tg.KeyPath())
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(pair.Certificate[0])
		return certx.Serial(c)
	}
	one := func(kind, name string, hosts ...string) string {
		tg, err := issue.One(ctx, inv, issue.OneRequest{Kind: kind, Name: name, Hosts: hosts}, issue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return serialOf(tg)
	}
	want := []string{}
	for _, id := range []string{"etcd-3/etcd-server", "etcd-3/etcd-peer", "etcd-3/etcd-healthcheck-client"} {
		tg, _ := inv.Target(id)
		want = append(want, serialOf(tg))
	}
	want = append(want, one("server", "gw-3", "127.0.0.13"))
	notWanted := []string{one("server", "gw-lb", "etcd.lb.example"), one("client", "ops")}
	for _, id := range []string{"etcd-2/etcd-server", "etcd-2/etcd-healthcheck-client"} {
		tg, _ := inv.Target(id)
		notWanted = append(notWanted, serialOf(tg))
	}
	got, err := removedSerials(inv.Paths, withoutNode(s, "etcd-3"), "etcd-3", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("serial %s missing from %v", w, got)
		}
	}
	for _, n := range notWanted {
		if slices.Contains(got, n) {
			t.Errorf("serial %s of another holder in %v", n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d serials %v, want %d", len(got), got, len(want))
	}
}
