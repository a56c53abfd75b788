package livetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
)

// RevokeCluster is a 3-member cluster run from etcd.env (the only way
// etcd reads a CRL) with an extra client, etcd-admin.
func RevokeCluster(t testing.TB) *etcdtest.Cluster {
	return etcdtest.Start(t, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Clients = append(f.Clients, cluster.FileClient{Name: "etcd-admin"})
	}})
}

// HeldPair is a certificate and key as read before a revocation: what a
// thief of the key would present.
type HeldPair struct {
	ID     string
	Serial string
	Pair   tls.Certificate
}

func HoldPairs(t testing.TB, s *cluster.Spec, ids ...string) []HeldPair {
	t.Helper()
	picked, missing := pki.Select(pki.New(s).Targets, ids)
	if len(missing) > 0 {
		t.Fatalf("unknown targets %v", missing)
	}
	var out []HeldPair
	for _, tg := range picked {
		certPEM, err := os.ReadFile(tg.CertPath())
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := os.ReadFile(tg.KeyPath())
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		out = append(out, HeldPair{ID: tg.ID, Serial: certx.Serial(leaf), Pair: pair})
	}
	return out
}

// AllPorts are every member's client and peer addresses.
func AllPorts(t testing.TB, s *cluster.Spec) []string {
	t.Helper()
	var out []string
	for _, n := range s.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, err := probe.ParseEndpoint(u)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, addr)
		}
	}
	return out
}

func CaPool(t testing.TB, c *etcdtest.Cluster) *x509.CertPool {
	t.Helper()
	pool, err := probe.LoadCertPool(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// CheckVerdicts presents pair on every port over fresh handshakes and
// wants it accepted (or refused) on each.
func CheckVerdicts(t *testing.T, c *etcdtest.Cluster, what string, pair tls.Certificate, accepted bool) {
	t.Helper()
	pool := CaPool(t, c)
	for _, addr := range AllPorts(t, c.Spec) {
		v, err := probe.Present(context.Background(), addr, pool, pair, 5*time.Second)
		if err != nil {
			t.Errorf("%s on %s: %v", what, addr, err)
			continue
		}
		if v.Accepted != accepted {
			t.Errorf("%s on %s: accepted=%v (%s), want %v", what, addr, v.Accepted, v.How, accepted)
		}
	}
}
