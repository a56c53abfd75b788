package issue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// TestNoWriteLeavesAConfigNamingAMissingCRL plans an etcd.env that names
// its bundle's CRL, without the CRL: the write is refused, naming both
// files, and nothing is written. With the CRL in the plan, or in effect in
// the bundle already, the same config is written.
func TestNoWriteLeavesAConfigNamingAMissingCRL(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p, n := pki.Paths{PKI: s.PKIDir}, s.Nodes[0]
	env, err := os.ReadFile(p.NodeEnv(n.Name))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := os.ReadFile(p.NodeCRL(n.Name))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh node directory beside the real one: its etcd.env names its
	// own etcd/crl.der, which is not there.
	other := filepath.Join(t.TempDir(), "nodes", n.Name)
	envPath := filepath.Join(other, pki.EnvFile)
	pl := &plan{byDir: map[string]*pending{}}
	pl.configs = append(pl.configs, atomicdir.File{Name: envPath, Data: env, Mode: configMode})
	var b atomicdir.Batch
	_, err = pl.write(&b)
	b.Abort()
	if err == nil || !strings.Contains(err.Error(), envPath+" names "+filepath.Join(other, "etcd", pki.CRLFile)) {
		t.Fatalf("write: %v, want a refusal naming %s and its missing CRL", err, envPath)
	}
	if _, err := os.Lstat(envPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s written anyway (%v)", envPath, err)
	}
	// A CRL that would not parse is refused as well.
	store := atomicdir.Store{Dir: filepath.Join(other, "etcd"), Name: n.Name}
	pl.add(store, atomicdir.File{Name: pki.CRLFile, Data: []byte("not a CRL"), Mode: atomicdir.CertMode})
	if err := pl.checkCRLs(); err == nil || !strings.Contains(err.Error(), "would not parse") {
		t.Errorf("a CRL that does not parse: %v, want a refusal", err)
	}
	// With the CRL in the plan, both are written.
	pl.add(store, atomicdir.File{Name: pki.CRLFile, Data: crl, Mode: atomicdir.CertMode})
	b = atomicdir.Batch{}
	if _, err := pl.write(&b); err != nil {
		t.Fatalf("write with the CRL: %v", err)
	}
	// In effect already: a config written alone passes.
	pl = &plan{byDir: map[string]*pending{}}
	pl.configs = append(pl.configs, atomicdir.File{Name: envPath, Data: append(env, '\n'), Mode: configMode})
	b = atomicdir.Batch{}
	if _, err := pl.write(&b); err != nil {
		t.Fatalf("write with the CRL in effect: %v", err)
	}
}
