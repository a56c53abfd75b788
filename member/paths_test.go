package member_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// TestMemberNameNeverLeavesThePKI: member add and remove refuse, as bad
// input and before the lock or the cluster is touched, a name that walks
// out of PKI/nodes/ and a node directory that is a link out of the PKI
// directory; the files outside stay as they were.
func TestMemberNameNeverLeavesThePKI(t *testing.T) {
	root := t.TempDir()
	s, err := cluster.FromFlags("t", []string{"etcd-1=127.0.0.21", "etcd-2=127.0.0.22"}, cluster.Options{PKIDir: filepath.Join(root, "pki")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	paths := pki.Paths{PKI: s.PKIDir}
	victim := filepath.Join(root, "victim")
	if err := os.MkdirAll(filepath.Join(victim, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "etcd", "server.crt"), []byte("not ours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, paths.NodeDir("etcd-3")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"../../victim", "not a valid name"},
		{"../victim", "not a valid name"},
		{"etcd-3", "outside the PKI directory"},
	} {
		for op, f := range map[string]func(context.Context, *pki.Inventory, member.Options) (*member.Result, error){"add": member.Add, "remove": member.Remove} {
			_, err := f(context.Background(), pki.New(s), member.Options{Name: tc.name})
			var ie *input.Error
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("member %s %s: %v, want bad input saying %q", op, tc.name, err, tc.want)
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(victim, "etcd", "server.crt")); err != nil || string(data) != "not ours\n" {
		t.Errorf("the file outside the PKI: %q %v", data, err)
	}
	if fi, err := os.Lstat(paths.NodeDir("etcd-3")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was touched: %v", err)
	}
	for _, p := range []string{filepath.Join(s.PKIDir, runner.StateFile), paths.Backups()} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was written: %v", p, err)
		}
	}
}
