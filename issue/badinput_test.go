package issue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
)

// Every bad input must give one clear line naming the file, be an input
// error (exit 2), and leave the tree exactly as it was.
func TestInitBadInputChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, pki string) // breaks a good tree
		want  string
	}{
		{"key does not match its cert", func(t *testing.T, pki string) {
			p := Paths{PKI: pki}
			other := mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "server.key"))
			overwrite(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key"), other)
		}, "nodes/etcd-node-1/etcd/server.key: key does not match certificate"},
		{"CA file that is not a CA", func(t *testing.T, pki string) {
			p := Paths{PKI: pki}
			overwrite(t, p.CACert(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.crt")))
			overwrite(t, p.CAKey(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")))
		}, `etcd/ca.crt: certificate "etcd-node-1" is not a CA`},
		{"CA key that does not match", func(t *testing.T, pki string) {
			p := Paths{PKI: pki}
			overwrite(t, p.CAKey(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")))
		}, "CA key does not match the CA certificate"},
		// A missing link alone is what a crash leaves, and is repaired
		// (TestInitRecoversMissingLink); these files are gone for good.
		{"CA key missing", func(t *testing.T, pki string) {
			removeStored(t, Paths{PKI: pki}.CAKey())
		}, "etcd/ca.key: does not exist"},
		{"cert without its key", func(t *testing.T, pki string) {
			removeStored(t, filepath.Join(Paths{PKI: pki}.NodeCertDir("etcd-node-3"), "peer.key"))
		}, "nodes/etcd-node-3/etcd/peer.key: does not exist"},
		{"cert from another CA", func(t *testing.T, pki string) {
			other := filepath.Join(t.TempDir(), "pki")
			if _, err := Init(context.Background(), spec(t, threeNodes, other), Options{}); err != nil {
				t.Fatal(err)
			}
			p, o := Paths{PKI: pki}, Paths{PKI: other}
			for _, f := range []string{"peer.crt", "peer.key"} {
				overwrite(t, filepath.Join(p.NodeCertDir("etcd-node-2"), f), mustRead(t, filepath.Join(o.NodeCertDir("etcd-node-2"), f)))
			}
		}, "nodes/etcd-node-2/etcd/peer.crt: not a valid etcd-peer certificate from this PKI's CA"},
		{"bundle ca.crt from another CA", func(t *testing.T, pki string) {
			other := filepath.Join(t.TempDir(), "pki")
			Init(context.Background(), spec(t, threeNodes, other), Options{})
			overwrite(t, filepath.Join(Paths{PKI: pki}.NodeCertDir("etcd-node-1"), "ca.crt"), mustRead(t, Paths{PKI: other}.CACert()))
		}, "nodes/etcd-node-1/etcd/ca.crt: holds CA"},
		{"garbage certificate", func(t *testing.T, pki string) {
			overwrite(t, filepath.Join(Paths{PKI: pki}.NodeCertDir("etcd-node-1"), "healthcheck-client.crt"), []byte("not pem"))
		}, "healthcheck-client.crt: no PEM certificate found"},
		{"read-only PKI dir", func(t *testing.T, pki string) {
			os.RemoveAll(Paths{PKI: pki}.NodeDir("etcd-node-3")) // something to write
			os.Chmod(filepath.Join(pki, "nodes"), 0o500)
			t.Cleanup(func() { os.Chmod(filepath.Join(pki, "nodes"), 0o700) })
		}, "nodes: read-only (mode 0500); nothing was written"},
		{"unreadable PKI dir", func(t *testing.T, pki string) {
			os.Chmod(pki, 0)
			t.Cleanup(func() { os.Chmod(pki, 0o700) })
		}, "not readable (mode 0000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := initTree(t, threeNodes)
			tc.setup(t, s.PKIDir)
			os.Chmod(s.PKIDir, mode(t, s.PKIDir)) // keep setup's mode
			before := snapshot(t, s.PKIDir)
			_, err := Init(context.Background(), s, Options{})
			checkInputError(t, err, tc.want)
			if after := snapshot(t, s.PKIDir); after != before {
				t.Error("a failed init changed the tree")
			}
		})
	}
}

func TestInitFreshBadDirs(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	_, err := Init(context.Background(), spec(t, threeNodes, file), Options{})
	checkInputError(t, err, "file: not a directory")

	ro := filepath.Join(base, "ro")
	os.Mkdir(ro, 0o500)
	_, err = Init(context.Background(), spec(t, threeNodes, filepath.Join(ro, "pki")), Options{})
	checkInputError(t, err, "ro: read-only")
	if entries, _ := os.ReadDir(ro); len(entries) != 0 {
		t.Errorf("wrote into a read-only dir: %v", entries)
	}
}

func TestInitExpiredCertIsNotReplaced(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	later := time.Now().Add(400 * 24 * time.Hour)
	_, err := Init(context.Background(), s, Options{Now: func() time.Time { return later }})
	checkInputError(t, err, "expired on")
	if err != nil && !strings.Contains(err.Error(), "etcdpki certs renew") {
		t.Errorf("error does not say how to fix it: %v", err)
	}
}

func checkInputError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var ie *ca.InputError
	if !errors.As(err, &ie) {
		t.Errorf("error %q is %T, not an input error (exit 2)", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// overwrite replaces the bytes behind a store's link, as a careless
// operator with cp would.
func overwrite(t *testing.T, path string, data []byte) {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(real, 0o600)
	if err := os.WriteFile(real, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mode(t *testing.T, p string) os.FileMode {
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// removeStored removes a store's file for good: its link and the file in
// the version in effect.
func removeStored(t *testing.T, path string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
