package etcdtest

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingBinary checks the message a fresh checkout gets before
// `make etcd`; it starts no etcd, so it also runs with -short.
func TestMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "etcd")
	t.Setenv("ETCD_BIN", missing)
	_, err := findBinary("ETCD_BIN", "etcd")
	if err == nil {
		t.Fatal("no error for a missing etcd binary")
	}
	for _, want := range []string{missing, "does not exist", "run `make etcd`", "ETCD_BIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	t.Setenv("ETCD_BIN", t.TempDir())
	if _, err := findBinary("ETCD_BIN", "etcd"); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("a directory as ETCD_BIN: %v", err)
	}
}
