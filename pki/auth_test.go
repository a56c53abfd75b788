package pki

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// TestAuthDefault: an unset auth.enabled takes the PKI's record (on when
// init made the PKI with auth on, off when there is none); an explicit
// value always wins; a record that says anything but "on" is bad input
// naming the file.
func TestAuthDefault(t *testing.T) {
	dir := t.TempDir()
	s := &cluster.Spec{PKIDir: dir}
	if err := ApplyAuthDefault(s); err != nil || s.Auth.Enabled {
		t.Fatalf("no record: %+v %v, want off", s.Auth, err)
	}
	path := Paths{PKI: dir}.AuthDefault()
	if err := os.WriteFile(path, []byte(AuthDefaultOn), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ApplyAuthDefault(s); err != nil || !s.Auth.Enabled {
		t.Errorf("record on: %+v %v, want on", s.Auth, err)
	}
	off := &cluster.Spec{PKIDir: dir, Auth: cluster.Auth{Set: true}}
	if err := ApplyAuthDefault(off); err != nil || off.Auth.Enabled {
		t.Errorf("explicit enabled: false under a record of on: %+v %v, want off", off.Auth, err)
	}
	os.WriteFile(path, []byte("yes\n"), 0o644)
	err := ApplyAuthDefault(&cluster.Spec{PKIDir: dir})
	var ie *input.Error
	if !errors.As(err, &ie) || !filepath.IsAbs(path) || !strings.Contains(err.Error(), path) {
		t.Errorf("record %q: %v, want an input error naming %s", "yes", err, path)
	}
}
