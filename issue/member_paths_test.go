package issue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// TestArchiveBundleStaysInsideThePKI: the archive of a removed member's
// bundle (copy into PKI/backup, then delete) never reaches outside the
// PKI directory: not through a name that walks out of PKI/nodes/, not
// through a node directory that is a link out of the PKI, not through a
// link inside the bundle. Each is bad input and nothing moves.
func TestArchiveBundleStaysInsideThePKI(t *testing.T) {
	s, _ := initTree(t, oneNode)
	p := pki.Paths{PKI: s.PKIDir}
	outside := filepath.Join(filepath.Dir(s.PKIDir), "victim")
	sentinel := filepath.Join(outside, "sentinel")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sentinel, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(what, name string) {
		t.Helper()
		_, err := ArchiveBundle(p, name, time.Now())
		var ie *input.Error
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v, want bad input", what, err)
		}
		if data, err := os.ReadFile(sentinel); err != nil || string(data) != "keep me\n" {
			t.Errorf("%s: the file outside the PKI is gone or changed: %q %v", what, data, err)
		}
		if _, err := os.Stat(p.Backups()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a backup was written: %v", what, err)
		}
	}
	for _, name := range []string{"../../victim", "../victim", "/abs", "a/b", ".", ".."} {
		check("name "+name, name)
	}
	// PKI/nodes/gone is a link to the directory outside.
	if err := os.Symlink(outside, p.NodeDir("gone")); err != nil {
		t.Fatal(err)
	}
	check("a node directory linked outside", "gone")
	if fi, err := os.Lstat(p.NodeDir("gone")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was removed or replaced: %v", err)
	}
	// A file of the bundle linked outside.
	stray := filepath.Join(p.NodeCertDir("etcd-node-1"), "stray.crt")
	if err := os.Symlink(sentinel, stray); err != nil {
		t.Fatal(err)
	}
	_, err := ArchiveBundle(p, "etcd-node-1", time.Now())
	if err == nil || !strings.Contains(err.Error(), "outside the PKI directory") {
		t.Errorf("a bundle with a link outside: %v", err)
	}
	if _, err := os.Stat(p.NodeCertDir("etcd-node-1")); err != nil {
		t.Errorf("the bundle was removed: %v", err)
	}
}
