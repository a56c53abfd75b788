// Package ramdir gives tests that write a PKI tree hundreds of times (the
// crash-at-every-step and failure-at-every-step tests, and the SoftHSM
// tokens they make one per step) a temporary directory on a RAM file
// system.
//
// Those tests stop a run at each of its file-system steps through
// atomicdir's hook and check what the next run makes of the tree: they
// test the order of the steps, not the disk's durability, so an fsync
// that reaches no disk changes nothing they assert. On the ext4 disk of
// a small CI machine the same steps cost most of the test's time in
// fsync and metadata journaling (TestInitCrashAtEveryStepConverges: 33 s
// on disk, 13 s on tmpfs, on a loaded 2-core machine). tmpfs is a real
// Linux file system with the same rename, symlink, mode and flock
// semantics, so nothing is faked.
//
// The RAM directory is $ETCDPKI_TEST_RAMDIR, or /dev/shm; when it is not
// a writable directory (or ETCDPKI_TEST_RAMDIR=off) TempDir falls back
// to t.TempDir.
package ramdir

import (
	"os"
	"testing"
)

// TempDir returns a fresh directory (mode 0700) under the RAM directory,
// removed when the test ends, or t.TempDir() when there is no RAM
// directory to use.
func TempDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("ETCDPKI_TEST_RAMDIR")
	switch base {
	case "off":
		return t.TempDir()
	case "":
		base = "/dev/shm"
	}
	if info, err := os.Stat(base); err != nil || !info.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "etcdpki-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("ramdir: remove %s: %v", dir, err)
		}
	})
	return dir
}
