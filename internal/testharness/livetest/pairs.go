package livetest

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// IssuedPair issues one certificate with `etcdpki issue` into
// PKI/issued/NAME and returns the pair, as its holder would use it.
func IssuedPair(t *testing.T, c *etcdtest.Cluster, kind, name string, hosts ...string) tls.Certificate {
	t.Helper()
	tg, err := issue.One(context.Background(), pki.New(c.Spec), issue.OneRequest{Kind: kind, Name: name, Hosts: hosts}, issue.Options{})
	if err != nil {
		t.Fatalf("issue %s %s: %v", kind, name, err)
	}
	pair, err := tls.LoadX509KeyPair(tg.CertPath(), tg.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	return pair
}
