package livetest

import (
	"context"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/verify"
)

// caKeyRow is verify's ca-key check for the cluster's spec.
func CAKeyRow(t *testing.T, c *etcdtest.Cluster) verify.Check {
	t.Helper()
	rep, err := verify.Evaluate(context.Background(), c.Inventory(), verify.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rep.Checks {
		if ch.Name == verify.CheckCAKey {
			return ch
		}
	}
	t.Fatal("verify --spec has no ca-key check")
	return verify.Check{}
}

// caKeyHolders lists the files under the PKI that hold the private key
// matching ca.crt.
func CAKeyHolders(t *testing.T, s *cluster.Spec) []string {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(s.PKIDir, "etcd", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := ca.ParseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	err = filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if key, err := certx.ParseKey(pem.EncodeToMemory(b)); err == nil && certx.KeyMatches(caCert, key.Public()) {
				holders = append(holders, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return holders
}
