package issue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// Every bad input must give one clear line naming the file, be an input
// error (exit 2), and leave the tree exactly as it was.
func TestInitBadInputChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, pkiDir string) // breaks a good tree
		want  string
	}{
		{"key does not match its cert", func(t *testing.T, pkiDir string) {
			p := pki.Paths{PKI: pkiDir}
			other := mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "server.key"))
			overwrite(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key"), other)
		}, "nodes/etcd-node-1/etcd/server.key: key does not match certificate"},
		{"CA file that is not a CA", func(t *testing.T, pkiDir string) {
			p := pki.Paths{PKI: pkiDir}
			overwrite(t, p.CACert(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.crt")))
			overwrite(t, p.CAKey(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")))
		}, `etcd/ca.crt: certificate "etcd-node-1" is not a CA`},
		{"CA key that does not match", func(t *testing.T, pkiDir string) {
			p := pki.Paths{PKI: pkiDir}
			overwrite(t, p.CAKey(), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")))
		}, "CA key does not match the CA certificate"},
		// A missing link alone is what a crash leaves, and is repaired
		// (TestInitRecoversMissingLink); these files are gone for good.
		{"CA key missing", func(t *testing.T, pkiDir string) {
			removeStored(t, pki.Paths{PKI: pkiDir}.CAKey())
		}, "etcd/ca.key: does not exist"},
		{"cert without its key", func(t *testing.T, pkiDir string) {
			removeStored(t, filepath.Join(pki.Paths{PKI: pkiDir}.NodeCertDir("etcd-node-3"), "peer.key"))
		}, "nodes/etcd-node-3/etcd/peer.key: does not exist"},
		{"cert from another CA", func(t *testing.T, pkiDir string) {
			other := filepath.Join(t.TempDir(), "pki")
			if _, err := Init(context.Background(), pki.New(spec(t, threeNodes, other)), Options{}); err != nil {
				t.Fatal(err)
			}
			p, o := pki.Paths{PKI: pkiDir}, pki.Paths{PKI: other}
			for _, f := range []string{"peer.crt", "peer.key"} {
				overwrite(t, filepath.Join(p.NodeCertDir("etcd-node-2"), f), mustRead(t, filepath.Join(o.NodeCertDir("etcd-node-2"), f)))
			}
		}, "nodes/etcd-node-2/etcd/peer.crt: not a valid etcd-peer certificate from this PKI's CA"},
		{"bundle ca.crt from another CA", func(t *testing.T, pkiDir string) {
			other := filepath.Join(t.TempDir(), "pki")
			Init(context.Background(), pki.New(spec(t, threeNodes, other)), Options{})
			overwrite(t, filepath.Join(pki.Paths{PKI: pkiDir}.NodeCertDir("etcd-node-1"), "ca.crt"), mustRead(t, pki.Paths{PKI: other}.CACert()))
		}, "nodes/etcd-node-1/etcd/ca.crt: holds another CA"},
		{"garbage certificate", func(t *testing.T, pkiDir string) {
			overwrite(t, filepath.Join(pki.Paths{PKI: pkiDir}.NodeCertDir("etcd-node-1"), "healthcheck-client.crt"), []byte("not pem"))
		}, "healthcheck-client.crt: no PEM certificate found"},
		{"read-only PKI dir", func(t *testing.T, pkiDir string) {
			os.RemoveAll(pki.Paths{PKI: pkiDir}.NodeDir("etcd-node-3")) // something to write
			os.Chmod(filepath.Join(pkiDir, "nodes"), 0o500)
			t.Cleanup(func() { os.Chmod(filepath.Join(pkiDir, "nodes"), 0o700) })
		}, "nodes: read-only (mode 0500); nothing was written"},
		{"unreadable PKI dir", func(t *testing.T, pkiDir string) {
			os.Chmod(pkiDir, 0)
			t.Cleanup(func() { os.Chmod(pkiDir, 0o700) })
		}, "not readable (mode 0000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := initTree(t, threeNodes)
			tc.setup(t, s.PKIDir)
			os.Chmod(s.PKIDir, mode(t, s.PKIDir)) // keep setup's mode
			before := snapshot(t, s.PKIDir)
			_, err := Init(context.Background(), pki.New(s), Options{})
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
	_, err := Init(context.Background(), pki.New(spec(t, threeNodes, file)), Options{})
	checkInputError(t, err, "file: not a directory")

	ro := filepath.Join(base, "ro")
	os.Mkdir(ro, 0o500)
	_, err = Init(context.Background(), pki.New(spec(t, threeNodes, filepath.Join(ro, "pki"))), Options{})
	checkInputError(t, err, "ro: read-only")
	if entries, _ := os.ReadDir(ro); len(entries) != 0 {
		t.Errorf("wrote into a read-only dir: %v", entries)
	}
}

func TestInitExpiredCertIsNotReplaced(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	later := time.Now().Add(400 * 24 * time.Hour)
	_, err := Init(context.Background(), pki.New(s), Options{Now: func() time.Time { return later }})
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
	var ie *input.Error
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

// `issue` can never write over the CA or a member's pair, and checks names,
// SANs and subjects with the spec's validators: every refusal is an input
// error naming the field, and the PKI tree (and any --out) is unchanged.
func TestIssueBadInputChangesNothing(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	outside := t.TempDir()
	link := filepath.Join(outside, "link-to-ca")
	if err := os.Symlink(p.CADir(), link); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "pki")
	if _, err := Init(context.Background(), pki.New(spec(t, threeNodes, other)), Options{}); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(outside, "foreign")
	if _, err := One(context.Background(), pki.New(spec(t, threeNodes, other)), OneRequest{Kind: "client", Name: "ops", Out: foreign}, Options{}); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(outside, "scratch") // like /tmp or /etc
	os.Mkdir(scratch, 0o755)
	os.WriteFile(filepath.Join(scratch, "hostname"), []byte("h\n"), 0o644)
	empty := filepath.Join(outside, "empty")
	os.Mkdir(empty, 0o755)
	copied := filepath.Join(outside, "copied") // cp -rL of a bundle: ..data a directory
	copyTree(t, foreign, copied)
	os.Remove(filepath.Join(copied, "..ops.store", "..data"))
	os.Mkdir(filepath.Join(copied, "..ops.store", "..data"), 0o700)
	issuedEtcd := filepath.Join(s.PKIDir, "issued", "etcd")
	os.MkdirAll(issuedEtcd, 0o700)
	os.WriteFile(filepath.Join(issuedEtcd, "foo.crt"), []byte("x"), 0o644)
	someoneElse := filepath.Join(outside, "kubeadm-etcd")
	os.Mkdir(someoneElse, 0o700)
	os.WriteFile(filepath.Join(someoneElse, "server.crt"), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.crt")), 0o644)
	os.WriteFile(filepath.Join(someoneElse, "server.key"), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")), 0o600)
	flagsOnly := cluster.Defaults(s.PKIDir) // issue --dir PKI, no spec

	gw := []string{"10.0.0.21"}
	for _, tc := range []struct {
		name string
		s    *cluster.Spec
		r    OneRequest
		want string
	}{
		{"client named ca", s, OneRequest{Kind: "client", Name: "ca"}, `name "ca" is reserved`},
		{"client named ca into the CA dir", s, OneRequest{Kind: "client", Name: "ca", Out: p.CADir()}, `name "ca" is reserved`},
		{"client named like a kind", s, OneRequest{Kind: "client", Name: "etcd-server"}, `name "etcd-server" is reserved`},
		{"server named like a node", s, OneRequest{Kind: "server", Name: "etcd-node-1", Hosts: gw}, `name "etcd-node-1" is a node of the cluster`},
		{"server named like a node, --dir only", flagsOnly, OneRequest{Kind: "server", Name: "etcd-node-2", Hosts: gw}, `name "etcd-node-2" already has a bundle`},
		{"client named like a spec client", s, OneRequest{Kind: "client", Name: "etcd-admin"}, `name "etcd-admin" is a client of the cluster`},
		{"client named like the apiserver", flagsOnly, OneRequest{Kind: "client", Name: "kube-apiserver"}, `name "kube-apiserver" is a client of the cluster`},
		{"leading underscore", s, OneRequest{Kind: "client", Name: "_x"}, `name "_x" is not a valid name`},
		{"out into the CA", s, OneRequest{Kind: "client", Name: "ops", Out: p.CADir()}, "--out " + p.CADir() + " is inside the PKI directory's managed tree (etcd)"},
		{"out into a node bundle", s, OneRequest{Kind: "server", Name: "gw", Hosts: gw, Out: p.NodeCertDir("etcd-node-1")}, "is inside the PKI directory's managed tree (nodes/etcd-node-1/etcd)"},
		{"out into the PKI root", s, OneRequest{Kind: "client", Name: "ops", Out: s.PKIDir}, "is inside the PKI directory's managed tree (.)"},
		{"out into the issued dir itself", s, OneRequest{Kind: "client", Name: "ops", Out: filepath.Join(s.PKIDir, "issued")}, "managed tree (issued)"},
		{"out through a symlink into the CA", s, OneRequest{Kind: "client", Name: "ops", Out: link}, "is inside the PKI directory's managed tree (etcd)"},
		{"out with another CA", s, OneRequest{Kind: "client", Name: "ops", Out: foreign}, "foreign/ca.crt: holds another CA (\"etcd-ca\", serial "},
		{"out holding another server", s, OneRequest{Kind: "server", Name: "gw", Hosts: gw, Out: someoneElse}, `kubeadm-etcd: exists and is not an etcdpki bundle for "gw" (it holds server.crt (a plain file), server.key (a plain file))`},
		{"out into a directory of other files", s, OneRequest{Kind: "client", Name: "ops", Out: scratch}, `scratch: exists and is not an etcdpki bundle for "ops" (it holds hostname)`},
		{"out into an empty directory", s, OneRequest{Kind: "client", Name: "ops", Out: empty}, `empty: exists and is not an etcdpki bundle for "ops" (an empty directory with mode 0755; etcdpki does not change the mode of a directory it did not create)`},
		{"out into a bundle copied with its links followed", s, OneRequest{Kind: "client", Name: "ops", Out: copied}, `copied: exists and is not an etcdpki bundle for "ops" (..ops.store/..data is a directory, not a link: a copy that followed the links (cp -rL, scp -r)? copy bundles with rsync -a or cp -a, which keep links)`},
		{"out onto a file", s, OneRequest{Kind: "client", Name: "ops", Out: filepath.Join(scratch, "hostname")}, `hostname: a regular file, where etcdpki would create the bundle directory`},
		{"issued dir holding another name's files", s, OneRequest{Kind: "client", Name: "etcd"}, `issued/etcd: exists and is not an etcdpki bundle for "etcd" (it holds foo.crt)`},
		{"dns with a space", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"a b"}}, `--dns "a b" is not a DNS name`},
		{"dns empty", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{""}}, `--dns "" is not a DNS name`},
		{"dns newline", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"a\nb"}}, `--dns "a\nb" is not a DNS name`},
		{"dns e-mail", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"ops@example.com"}}, `--dns "ops@example.com" is not a DNS name`},
		{"dns URL", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"https://gw.example"}}, `--dns "https://gw.example" is not a DNS name`},
		{"dns non-ASCII", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"bücher.example"}}, `--dns "bücher.example" is not a DNS name`},
		{"unspecified IP", s, OneRequest{Kind: "server", Name: "gw", Hosts: []string{"0.0.0.0"}}, "--ip 0.0.0.0 cannot be a member's address or a certificate SAN"},
		{"org with a newline", s, OneRequest{Kind: "client", Name: "ops", Organization: []string{"a\nb"}}, `--org "a\nb" holds a non-printable character`},
		{"org too long", s, OneRequest{Kind: "client", Name: "ops", Organization: []string{strings.Repeat("o", 65)}}, "is longer than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeOut := snapshot(t, s.PKIDir), snapshot(t, outside)
			_, err := One(context.Background(), pki.New(tc.s), tc.r, Options{})
			checkInputError(t, err, tc.want)
			if snapshot(t, s.PKIDir) != before || snapshot(t, outside) != beforeOut {
				t.Error("a refused issue changed the tree")
			}
		})
	}
}

// A bundle whose ca.crt is another CA's is invalid in certs list (and so
// for rotate), not ok: its owner would trust the wrong CA.
func TestListFlagsForeignBundleCA(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	other := filepath.Join(t.TempDir(), "pki")
	if _, err := Init(context.Background(), pki.New(spec(t, threeNodes, other)), Options{}); err != nil {
		t.Fatal(err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	overwrite(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "ca.crt"), mustRead(t, pki.Paths{PKI: other}.CACert()))
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos[1:] {
		want := pki.StatusOK
		if strings.HasPrefix(i.Name, "etcd-node-2/") {
			want = pki.StatusInvalid
		}
		if i.Status != want {
			t.Errorf("%s is %s (%s), want %s", i.Name, i.Status, i.Reason, want)
		}
		if want == pki.StatusInvalid && !strings.Contains(i.Reason, "nodes/etcd-node-2/etcd/ca.crt: holds another CA") {
			t.Errorf("%s: reason %q does not name the bundle's ca.crt", i.Name, i.Reason)
		}
	}
}

// A corrupt ca.key is reported against ca.key, in one line of words.
func TestCorruptCAKeyNamesTheKeyFile(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	overwrite(t, p.CAKey(), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	for name, run := range map[string]func() error{
		"init": func() error { _, err := Init(context.Background(), pki.New(s), Options{}); return err },
		"list": func() error { _, err := pki.List(pki.New(s), 0, time.Now()); return err },
		"issue": func() error {
			_, err := One(context.Background(), pki.New(s), OneRequest{Kind: "client", Name: "ops"}, Options{})
			return err
		},
	} {
		err := run()
		checkInputError(t, err, p.CAKey()+": malformed ec private key")
		if err != nil && strings.ContainsAny(err.Error(), "{}") {
			t.Errorf("%s: error carries JSON: %v", name, err)
		}
	}
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
