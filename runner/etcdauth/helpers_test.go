package etcdauth_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// signClient mints a client pair with common name cn from the cluster's
// CA into a temporary directory: the break-glass root, or a certificate
// the spec does not list.
func signClient(t testing.TB, c *etcdtest.Cluster, cn string) (crt, key string) {
	t.Helper()
	certPEM, err := os.ReadFile(c.Paths.CACert())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(c.Paths.CAKey())
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.ParseFiles(certPEM, keyPEM, c.Paths.CACert(), c.Paths.CAKey())
	if err != nil {
		t.Fatal(err)
	}
	leaf, leafKey, err := authority.Sign(ca.Request{Kind: ca.KindClient, CommonName: cn,
		Key: cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(crt, leaf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, leafKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

// clientAs is a client of every member presenting the pair.
func clientAs(t testing.TB, c *etcdtest.Cluster, crt, key string) *clientv3.Client {
	t.Helper()
	cfg, err := etcdtest.TLSConfig(c.CAFile(), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return c.ClientTLS(t, cfg)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
