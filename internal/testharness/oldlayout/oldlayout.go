// Package oldlayout rewrites a PKI directory into the layout etcdpki
// wrote before named stores, with the same bytes, for the tests of the
// migration from it. Only tests import it.
package oldlayout

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write turns every store under root ("DIR/..OWNER.store/" holding the
// versions and "..data") into the old layout: the versions and "..data"
// in DIR itself, each name a link through "DIR/..data".
func Write(t testing.TB, root string) {
	t.Helper()
	var stores []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "..") && strings.HasSuffix(d.Name(), ".store") {
			stores = append(stores, p)
			return filepath.SkipDir
		}
		return nil
	})
	if len(stores) == 0 {
		t.Fatalf("oldlayout: no store under %s", root)
	}
	for _, sd := range stores {
		dir, prefix := filepath.Dir(sd), filepath.Base(sd)+"/"
		entries, err := os.ReadDir(sd)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.Rename(filepath.Join(sd, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		links, _ := os.ReadDir(dir)
		for _, e := range links {
			p := filepath.Join(dir, e.Name())
			target, err := os.Readlink(p)
			if err != nil || !strings.HasPrefix(target, prefix) {
				continue
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(strings.TrimPrefix(target, prefix), p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Remove(sd); err != nil {
			t.Fatal(err)
		}
	}
}
