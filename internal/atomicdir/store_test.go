package atomicdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Two stores whose public names share a directory (a node's and
// kube-apiserver's bundles in one etcd/) never share a link or a version:
// updating one leaves every name of the other resolving to its bytes, and
// its pruning never touches the other's versions.
func TestStoresShareADirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	node, api := Store{Dir: dir, Name: "etcd-node-1"}, Store{Dir: dir, Name: "kube-apiserver"}
	if _, err := Update(node, files("ca.crt", "ca", "server.crt", "c1", "server.key", "k1"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(api, files("ca.crt", "ca"), nil); err != nil {
		t.Fatal(err)
	}
	nodeFirst, _ := current(node.Path())
	for i := 2; i <= 4; i++ {
		// Three more apiserver versions: each prunes only its own.
		if _, err := Update(api, files("ca.crt", fmt.Sprintf("ca%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if read(t, dir, "server.crt") != "c1" || read(t, dir, "server.key") != "k1" {
		t.Error("the apiserver's updates broke the node's pair")
	}
	if read(t, dir, "ca.crt") != "ca4" {
		t.Error("the shared name does not show the last update's bytes")
	}
	if _, err := os.Stat(nodeFirst); err != nil {
		t.Errorf("the node's version in effect is gone: %v", err)
	}
	if vs, _ := versions(api.Path()); len(vs) != 2 {
		t.Errorf("apiserver store keeps %d versions, want 2 (in effect and previous)", len(vs))
	}
	// The node's next update takes the shared name back and keeps the
	// apiserver's store whole.
	if _, err := Update(node, files("server.crt", "c2", "server.key", "k2", "ca.crt", "ca4"), nil); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "ca.crt")); target != node.target("ca.crt") {
		t.Errorf("ca.crt -> %s, want the node's store", target)
	}
	if got, _ := os.ReadFile(filepath.Join(api.Path(), DataLink, "ca.crt")); string(got) != "ca4" {
		t.Errorf("the apiserver's own ca.crt reads %q", got)
	}
	if _, err := Resolve(dir); err == nil {
		t.Error("Resolve picked one of two stores")
	}
	if v, err := Resolve(filepath.Join(t.TempDir(), "missing")); err != nil || v != "" {
		t.Errorf("Resolve of a missing directory: %q, %v", v, err)
	}
}

// Names that look like other parts of the layout stay store names.
func TestStoreNamesNeverLookLikeTheLayout(t *testing.T) {
	for _, n := range []string{"data", "link.tmp5", "a.tmp1", "2026_11_26_06_45_12.123456789"} {
		dir := t.TempDir()
		s := Store{Dir: dir, Name: n}
		if _, err := Update(s, files("x.crt", "1"), nil); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if _, err := Update(s, files("x.crt", "2"), nil); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if read(t, dir, "x.crt") != "2" || isTemp(storeDirName(n)) || isVersion(storeDirName(n)) || storeDirName(n) == DataLink {
			t.Errorf("store %q confused with the layout", n)
		}
	}
	for _, n := range []string{"", ".hidden", "a/b"} {
		if _, err := Update(Store{Dir: t.TempDir(), Name: n}, files("x.crt", "1"), nil); err == nil {
			t.Errorf("store name %q accepted", n)
		}
	}
}

// legacy writes the layout etcdpki wrote before named stores: versions
// and "..data" in dir itself, every name a link through "..data". The
// older version is what a previous update left for late readers.
func legacy(t *testing.T, dir string, kv ...string) {
	t.Helper()
	old := filepath.Join(dir, "..2025_01_01_00_00_00.000000000")
	cur := filepath.Join(dir, "..2025_06_01_00_00_00.000000000")
	for _, d := range []string{old, cur} {
		if err := os.MkdirAll(d, DirMode); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(old, "server.crt"), []byte("stale"), CertMode)
	for _, f := range files(kv...) {
		if err := os.WriteFile(filepath.Join(cur, f.Name), f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(DataLink, f.Name), filepath.Join(dir, f.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(cur), filepath.Join(dir, DataLink)); err != nil {
		t.Fatal(err)
	}
}

// showsOneOf fails unless every name resolves and, together, they show
// one of the given sets of contents (no pair from two versions).
func showsOneOf(t *testing.T, dir string, names []string, sets ...map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("%s does not resolve: %v", n, err)
			return
		}
		got[n] = string(b)
	}
	for _, want := range sets {
		ok := true
		for _, n := range names {
			ok = ok && got[n] == want[n]
		}
		if ok {
			return
		}
	}
	t.Errorf("names show %v, none of %v", got, sets)
}

// A store of the layout before named stores is migrated by the next
// update with the same bytes, and a kill at any step of that migration
// leaves every name resolving to a matched pair; the next update ends
// with the new layout and nothing of the old one.
func TestLegacyMigrationCrashAtEveryStep(t *testing.T) {
	names := []string{"ca.crt", "server.crt", "server.key"}
	oldSet := map[string]string{"ca.crt": "ca", "server.crt": "c1", "server.key": "k1"}
	newSet := map[string]string{"ca.crt": "ca", "server.crt": "c2", "server.key": "k2"}
	for n := 1; ; n++ {
		dir := filepath.Join(t.TempDir(), "etcd")
		os.Mkdir(dir, DirMode)
		legacy(t, dir, "ca.crt", "ca", "server.crt", "c1", "server.key", "k1")
		s := Store{Dir: dir, Name: "etcd-node-1"}
		count, stopped := 0, false
		restore := SetHook(func(op, path string) error {
			if count++; count == n {
				panic("kill")
			}
			return nil
		})
		func() {
			defer func() { stopped = recover() != nil }()
			Update(s, files("server.crt", "c2", "server.key", "k2"), nil)
		}()
		restore()
		showsOneOf(t, dir, names, oldSet, newSet)
		if got, err := Read(dir, "server.key"); err != nil || (string(got) != "k1" && string(got) != "k2") {
			t.Errorf("kill at step %d: Read: %q, %v", n, got, err)
		}
		if _, err := Update(s, files("server.crt", "c2", "server.key", "k2"), nil); err != nil {
			t.Fatalf("kill at step %d: next update: %v", n, err)
		}
		showsOneOf(t, dir, names, newSet)
		entries, _ := os.ReadDir(dir)
		var left []string
		for _, e := range entries {
			left = append(left, e.Name())
		}
		if want := []string{"..etcd-node-1.store", "ca.crt", "server.crt", "server.key"}; !slices.Equal(left, want) {
			t.Errorf("kill at step %d: dir holds %v, want %v", n, left, want)
		}
		for _, name := range names {
			if target, _ := os.Readlink(filepath.Join(dir, name)); target != s.target(name) {
				t.Errorf("kill at step %d: %s -> %s", n, name, target)
			}
		}
		if !stopped {
			if n < 10 {
				t.Fatalf("the migration took only %d steps", n)
			}
			break
		}
	}
}

// The migration moves the old bytes first: before the update's own
// version, the store holds a version with exactly the old contents.
func TestLegacyMigrationKeepsTheBytes(t *testing.T) {
	dir := t.TempDir()
	legacy(t, dir, "ca.crt", "ca", "peer.crt", "p", "peer.key", "pk")
	s := Store{Dir: dir, Name: "n1"}
	res, err := Update(s, files("ca.crt", "ca"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Error("a migration with the same bytes reported a change")
	}
	for n, want := range map[string]string{"ca.crt": "ca", "peer.crt": "p", "peer.key": "pk"} {
		if got := read(t, dir, n); got != want {
			t.Errorf("%s = %q after migration, want %q", n, got, want)
		}
	}
	cur, _ := Current(dir)
	if !strings.HasPrefix(cur, s.Path()+string(os.PathSeparator)) {
		t.Errorf("current version %s is not in the store", cur)
	}
	if info, _ := os.Stat(filepath.Join(cur, "peer.key")); info.Mode().Perm() != KeyMode {
		t.Errorf("peer.key mode %o after migration", info.Mode().Perm())
	}
	if _, err := os.Lstat(filepath.Join(dir, DataLink)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the old ..data is left")
	}
}

// DropOld leaves the store with only the version in effect.
func TestDropOldLeavesOnlyTheVersionInEffect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	s := Store{Dir: dir, Name: "ca"}
	Update(s, files("ca.crt", "1", "ca.key", "k1"), nil)
	Update(s, files("ca.crt", "2", "ca.key", "k2"), nil)
	if vs, _ := Versions(dir); len(vs) != 2 {
		t.Fatalf("versions before: %v", vs)
	}
	if err := DropOld(dir); err != nil {
		t.Fatal(err)
	}
	cur, _ := Current(dir)
	if vs, _ := Versions(dir); len(vs) != 1 || vs[0] != cur {
		t.Errorf("versions after DropOld: %v, want only %s", vs, cur)
	}
	if read(t, dir, "ca.key") != "k2" {
		t.Error("the key in effect changed")
	}
}
