package issue

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// TestEveryWriterReTightensModes loosens what an operator's chmod -R or
// a careless copy loosens (a node's peer key, node directories, the CA
// key, the PKI directory, a backup) and runs each writer of the package
// on something else: each one leaves every key 0600, the CA key 0400 and
// every directory of the layout 0700.
func TestEveryWriterReTightensModes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(s *cluster.Spec) error
	}{
		{"init", func(s *cluster.Spec) error { _, err := Init(ctx, pki.New(s), Options{}); return err }},
		{"certs renew of another pair", func(s *cluster.Spec) error {
			var ts []pki.Target
			for _, tg := range pki.New(s).Targets {
				if tg.ID == "apiserver-etcd-client" {
					ts = append(ts, tg)
				}
			}
			_, err := Renew(ctx, pki.New(s), ts, RenewOptions{})
			return err
		}},
		{"issue", func(s *cluster.Spec) error {
			_, err := One(ctx, pki.New(s), OneRequest{Kind: "client", Name: "ops"}, Options{Out: io.Discard})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := initTree(t, threeNodes)
			p := pki.Paths{PKI: s.PKIDir}
			peerKey := filepath.Join(p.NodeCertDir("etcd-node-1"), "peer.key")
			realPeerKey, _ := filepath.EvalSymlinks(peerKey)
			realCAKey, _ := filepath.EvalSymlinks(p.CAKey())
			backupKey := filepath.Join(p.Backups(), "x", "server.key")
			os.MkdirAll(filepath.Dir(backupKey), 0o755)
			os.WriteFile(backupKey, []byte("old key"), 0o644)
			loose := map[string]os.FileMode{
				realPeerKey: 0o644, realCAKey: 0o644, s.PKIDir: 0o755,
				p.NodeDir("etcd-node-1"): 0o755, p.NodeCertDir("etcd-node-1"): 0o755,
				filepath.Dir(realPeerKey): 0o755, p.Backups(): 0o755, backupKey: 0o644,
			}
			want := map[string]os.FileMode{
				realPeerKey: 0o600, realCAKey: 0o400, s.PKIDir: 0o700,
				p.NodeDir("etcd-node-1"): 0o700, p.NodeCertDir("etcd-node-1"): 0o700,
				filepath.Dir(realPeerKey): 0o700, p.Backups(): 0o700, backupKey: 0o600,
			}
			for path, m := range loose {
				if err := os.Chmod(path, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.run(s); err != nil {
				t.Fatal(err)
			}
			for path, m := range want {
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != m {
					t.Errorf("%s: mode %04o after %s, want %04o", path, info.Mode().Perm(), tc.name, m)
				}
			}
		})
	}
}
