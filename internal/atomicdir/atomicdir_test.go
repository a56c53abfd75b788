package atomicdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func files(kv ...string) []File {
	var fs []File
	for i := 0; i < len(kv); i += 2 {
		mode := CertMode
		if strings.HasSuffix(kv[i], ".key") {
			mode = KeyMode
		}
		fs = append(fs, File{Name: kv[i], Data: []byte(kv[i+1]), Mode: mode})
	}
	return fs
}

// st is the store "s" in dir.
func st(dir string) Store { return Store{Dir: dir, Name: "s"} }

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := Read(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpdateSwitchesTogether(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	res, err := Update(st(dir), files("server.crt", "c1", "server.key", "k1", "ca.crt", "ca"), nil)
	if err != nil || !res.Changed || res.Previous != "" {
		t.Fatalf("first update: %+v %v", res, err)
	}
	first, _ := Current(dir)
	res, err = Update(st(dir), files("server.crt", "c2", "server.key", "k2"), nil)
	if err != nil || !res.Changed || res.Previous != first {
		t.Fatalf("second update: %+v %v", res, err)
	}
	if read(t, dir, "server.crt") != "c2" || read(t, dir, "server.key") != "k2" || read(t, dir, "ca.crt") != "ca" {
		t.Error("new pair not in effect, or ca.crt not carried over")
	}
	// The public names are links through ..data, so one rename switched them.
	for _, n := range []string{"server.crt", "server.key", "ca.crt"} {
		target, err := os.Readlink(filepath.Join(dir, n))
		if err != nil || target != filepath.Join("..s.store", DataLink, n) {
			t.Errorf("%s -> %q, %v", n, target, err)
		}
	}
	// The version before last is pruned; the one just replaced is kept for
	// readers that resolved it before the switch.
	Update(st(dir), files("server.crt", "c3", "server.key", "k3"), nil)
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("oldest version %s not pruned", first)
	}
}

func TestUpdateUnchangedWritesNothingButFixesModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	in := files("peer.crt", "c", "peer.key", "k")
	if _, err := Update(st(dir), in, nil); err != nil {
		t.Fatal(err)
	}
	cur, _ := Current(dir)
	os.Chmod(filepath.Join(cur, "peer.key"), 0o644)
	os.Chmod(dir, 0o755)
	res, err := Update(st(dir), in, nil)
	if err != nil || res.Changed {
		t.Fatalf("unchanged update: %+v %v", res, err)
	}
	if now, _ := Current(dir); now != cur {
		t.Error("an identical update made a new version")
	}
	for p, want := range map[string]os.FileMode{filepath.Join(cur, "peer.key"): KeyMode, dir: DirMode} {
		info, _ := os.Stat(p)
		if info.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", p, info.Mode().Perm(), want)
		}
	}
}

func TestValidateVetoChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	Update(st(dir), files("server.crt", "c1", "server.key", "k1"), nil)
	before, _ := Current(dir)
	_, err := Update(st(dir), files("server.crt", "c2"), func(m map[string][]byte) error {
		if string(m["server.key"]) != "k1" {
			t.Errorf("validate did not see the carried-over key")
		}
		return errors.New("mismatch")
	})
	if err == nil || err.Error() != "mismatch" {
		t.Fatalf("err = %v", err)
	}
	after, _ := Current(dir)
	entries, _ := os.ReadDir(dir)
	if before != after || read(t, dir, "server.crt") != "c1" || len(entries) != 3 {
		t.Errorf("a vetoed update left traces: %v", entries)
	}
}

func TestMigratesFlatFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.crt"), []byte("old-c"), 0o644)
	os.WriteFile(filepath.Join(dir, "server.key"), []byte("old-k"), 0o644)
	if _, err := Update(st(dir), files("server.crt", "new-c", "server.key", "new-k"), nil); err != nil {
		t.Fatal(err)
	}
	if read(t, dir, "server.crt") != "new-c" || read(t, dir, "server.key") != "new-k" {
		t.Error("flat files not replaced")
	}
	if !st(dir).view().isLink("server.key") {
		t.Error("flat file not turned into a link")
	}
}

// A crash after a version was written but before the switch leaves a
// stray version directory; the old contents stay in effect and the next
// update proceeds.
func TestCrashBeforeSwitch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	Update(st(dir), files("server.crt", "c1", "server.key", "k1"), nil)
	stray := filepath.Join(st(dir).Path(), "..2000_01_01_00_00_00.000000000")
	os.Mkdir(stray, DirMode)
	os.WriteFile(filepath.Join(stray, "server.crt"), []byte("half"), CertMode)
	if read(t, dir, "server.crt") != "c1" {
		t.Fatal("stray version took effect")
	}
	if _, err := Update(st(dir), files("server.crt", "c2", "server.key", "k2"), nil); err != nil {
		t.Fatal(err)
	}
	if read(t, dir, "server.crt") != "c2" {
		t.Error("update after crash failed")
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Error("stray version not cleaned up")
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "etcd.conf.yml")
	if changed, err := WriteFile(p, []byte("a"), 0o644); err != nil || !changed {
		t.Fatalf("%v %v", changed, err)
	}
	os.Chmod(p, 0o666)
	if changed, err := WriteFile(p, []byte("a"), 0o644); err != nil || changed {
		t.Fatalf("identical write: %v %v", changed, err)
	}
	if info, _ := os.Stat(p); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %o not enforced", info.Mode().Perm())
	}
	if _, err := Update(st(t.TempDir()), files("../x", "y"), nil); err == nil {
		t.Error("path traversal in a file name accepted")
	}
}

// What a kill can leave in a store, and what the next Update makes of it.
func TestUpdateRepairsWhatACrashLeft(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	if _, err := Update(st(dir), files("server.crt", "c1", "server.key", "k1"), nil); err != nil {
		t.Fatal(err)
	}
	first, _ := Current(dir)
	if _, err := Update(st(dir), files("server.crt", "c2", "server.key", "k2"), nil); err != nil {
		t.Fatal(err)
	}
	// The public key link was never made, a link and a file being
	// replaced were left half done, a version was never switched to.
	os.Remove(filepath.Join(dir, "server.key"))
	os.Symlink("..data/server.key", filepath.Join(st(dir).Path(), "..link.tmp123"))
	os.WriteFile(filepath.Join(dir, ".server.key.tmp456"), []byte("half"), 0o600)
	orphan := filepath.Join(st(dir).Path(), "..9999_01_01_00_00_00.000000000")
	os.Mkdir(orphan, DirMode)
	os.WriteFile(filepath.Join(orphan, "server.crt"), []byte("c3"), 0o644)
	if got, err := Read(dir, "server.key"); err != nil || string(got) != "k2" {
		t.Fatalf("Read through ..data: %q, %v; want k2", got, err)
	}
	res, err := Update(st(dir), files("server.crt", "c2", "server.key", "k2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Error("repair made a new version of unchanged files")
	}
	if read(t, dir, "server.key") != "k2" {
		t.Error("the missing link was not recreated")
	}
	for _, p := range []string{filepath.Join(st(dir).Path(), "..link.tmp123"), filepath.Join(dir, ".server.key.tmp456"), orphan} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", p)
		}
	}
	// "..data" naming a version that is gone falls back to the one before.
	cur, _ := Current(dir)
	os.RemoveAll(cur)
	if got, err := Read(dir, "server.crt"); err != nil || string(got) != "c1" {
		t.Fatalf("Read with ..data dangling: %q, %v; want the previous version's c1", got, err)
	}
	if _, err := Update(st(dir), files("ca.crt", "ca"), nil); err != nil {
		t.Fatalf("update with ..data dangling: %v", err)
	}
	if now, _ := Current(dir); now == first {
		t.Error("no new version")
	}
	if read(t, dir, "server.crt") != "c1" || read(t, dir, "server.key") != "k1" || read(t, dir, "ca.crt") != "ca" {
		t.Error("the previous version's pair was not carried over")
	}
}

// A failed Commit takes every switch back.
func TestFailedCommitRollsBack(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	Update(st(a), files("x.crt", "a1"), nil)
	Update(st(b), files("x.crt", "b1"), nil)
	for n := 1; n < 20; n++ {
		count := 0
		restore := SetHook(func(op, path string) error {
			if count++; count == n {
				return errors.New("injected")
			}
			return nil
		})
		var bt Batch
		_, err := bt.Update(st(a), files("x.crt", "a2"), nil)
		if err == nil {
			_, err = bt.Update(st(b), files("x.crt", "b2"), nil)
		}
		if err == nil {
			_, err = bt.WriteFile(filepath.Join(base, "new", "conf"), []byte("c"), 0o644)
		}
		if err != nil {
			bt.Abort()
		} else {
			err = bt.Commit()
		}
		restore()
		if count < n {
			break // every step passed
		}
		if err == nil {
			continue // failed while pruning, after the switch
		}
		if read(t, a, "x.crt") != "a1" || read(t, b, "x.crt") != "b1" {
			t.Errorf("failure at step %d: a=%q b=%q, want a1 b1", n, read(t, a, "x.crt"), read(t, b, "x.crt"))
		}
		if _, err := os.Stat(filepath.Join(base, "new")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("failure at step %d: the directory it made is still there", n)
		}
	}
}

// NewDir makes a directory appear whole, and cleans up after a crash.
func TestNewDirAppearsWhole(t *testing.T) {
	root := filepath.Join(t.TempDir(), "backup")
	os.MkdirAll(root, DirMode)
	stale := filepath.Join(root, ".20260101T000000Z.tmp1")
	os.Mkdir(stale, DirMode)
	dir := filepath.Join(root, "20260101T000000Z")
	undo, err := NewDir(dir, []File{{Name: "nodes/n1/etcd/server.key", Data: []byte("k"), Mode: KeyMode}})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nodes/n1/etcd/server.key")); string(b) != "k" {
		t.Error("file not in the new directory")
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("a crashed run's staging directory is left")
	}
	if _, err := NewDir(dir, nil); err == nil {
		t.Error("NewDir over an existing directory")
	}
	undo()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Error("undo left the directory")
	}
}
