package issue

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/oldlayout"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/pki"
)

// TestMigrateLayoutCrashAtEveryStepConverges takes a PKI of the layout
// before named stores and stops its migration at each filesystem step in
// turn, as a kill would: every pair still reads whole, with the bytes it
// had, and the next run ends in the named-store layout with the same
// bytes and nothing of the old one left.
func TestMigrateLayoutCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	base, _ := initTree(t, oneNode)
	oldlayout.Write(t, base.PKIDir)
	want := pairsInEffect(t, base)
	steps := 0
	for n := 1; ; n++ {
		dir := filepath.Join(ramdir.TempDir(t), "pki")
		copyTree(t, base.PKIDir, dir)
		s := spec(t, oneNode, dir)
		stopped := crashpoint.RunUntilStepIn(t, dir, n, func() error {
			_, err := MigrateLayout(pki.New(s))
			return err
		})
		if got := pairsInEffect(t, s); !maps.Equal(got, want) {
			t.Fatalf("killed at step %s: the pairs a reader sees changed", stopped)
		}
		moved, err := MigrateLayout(pki.New(s))
		if err != nil {
			t.Fatalf("after step %s: %v", stopped, err)
		}
		if stopped != "" && len(moved) == 0 {
			t.Errorf("after step %s: the next run moved nothing", stopped)
		}
		if got := pairsInEffect(t, s); !maps.Equal(got, want) {
			t.Fatalf("after step %s: the pairs changed", stopped)
		}
		checkConverged(t, s, stopped)
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == atomicdir.DataLink && !strings.HasSuffix(filepath.Base(filepath.Dir(p)), ".store") {
				t.Errorf("after step %s: old layout left: %s", stopped, p)
			}
			return nil
		})
		if again, err := MigrateLayout(pki.New(s)); err != nil || len(again) != 0 {
			t.Errorf("after step %s: a migrated PKI moved again: %v %v", stopped, again, err)
		}
		if stopped == "" {
			steps = n - 1
			break
		}
	}
	if steps < 20 {
		t.Fatalf("the migration made only %d steps", steps)
	}
	t.Logf("migration: killed at each of %d steps, every next run converged", steps)
}

// oneNode keeps the kill loop short: every kind of store (the CA's, a
// node's, the apiserver's two) once.
const oneNode = "name: test\nnodes:\n  - {name: etcd-node-1, ips: [10.0.0.11]}\n"

// Init on a PKI of the old layout migrates it and changes no byte.
func TestInitMigratesTheOldLayout(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	want := pairsInEffect(t, s)
	oldlayout.Write(t, s.PKIDir)
	res, err := Init(t.Context(), pki.New(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 0 {
		t.Errorf("init wrote %v", res.Written)
	}
	if got := pairsInEffect(t, s); !maps.Equal(got, want) {
		t.Error("the pairs changed")
	}
	if _, err := os.Lstat(filepath.Join(pki.Paths{PKI: s.PKIDir}.NodeCertDir("etcd-node-1"), atomicdir.DataLink)); err == nil {
		t.Error("the old ..data is left")
	}
	checkConverged(t, s, "none")
}
