package issue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/pkilock"
	"github.com/etcdpki/etcdpki/pki"
)

// A kill between creating a store's .crt link and its .key link leaves
// the complete version under ..data: the next run picks it up and puts
// the missing link back, instead of refusing ("does not exist").
func TestInitRecoversMissingLink(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	caKey := mustRead(t, p.CAKey())
	serverKey := filepath.Join(p.NodeCertDir("etcd-node-2"), "server.key")
	serverKeyPEM := mustRead(t, serverKey)
	for _, link := range []string{p.CAKey(), serverKey} {
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []func() error{
		func() error {
			_, err := Renew(context.Background(), pki.New(s), pki.New(s).Targets[:1], RenewOptions{})
			return err
		},
		func() error { _, err := Init(context.Background(), pki.New(s), Options{}); return err },
	} {
		if err := run(); err != nil {
			t.Fatalf("after a crash between two links: %v", err)
		}
	}
	if !bytes.Equal(mustRead(t, p.CAKey()), caKey) {
		t.Error("the CA key is not the one under ..data")
	}
	if !bytes.Equal(mustRead(t, serverKey), serverKeyPEM) {
		t.Error("etcd-node-2's server key was replaced instead of its link restored")
	}
	checkConverged(t, s, "link removed")
}

// A "..data" naming a version that is gone falls back to the version
// before it; with none left, the pairs are issued again.
func TestInitRepairsDanglingData(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	// Two versions of node 1's store: the previous one is kept.
	node1 := pki.New(s).Targets[0]
	if _, err := Renew(context.Background(), pki.New(s), []pki.Target{node1}, RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(p.NodeCertDir("etcd-node-1"))
	cur, _ := atomicdir.Current(prev)
	os.RemoveAll(cur)
	// Node 2's only version goes.
	cur2, _ := atomicdir.Current(p.NodeCertDir("etcd-node-2"))
	os.RemoveAll(cur2)
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatalf("init with ..data pointing at nothing: %v", err)
	}
	checkConverged(t, s, "version removed")
	if _, err := Renew(context.Background(), pki.New(s), pki.New(s).Targets, RenewOptions{}); err != nil {
		t.Fatalf("renew afterwards: %v", err)
	}
}

// Temporary files a crash left behind are removed, and none ends up in a
// bundle.
func TestInitRemovesStaleTemporaryFiles(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	stale := []string{
		filepath.Join(p.NodeDir("etcd-node-1"), ".etcd.conf.yml.tmp123456"),
		filepath.Join(p.APIServerDir(), ".etcd-flags.tmp42"),
		filepath.Join(p.NodeCertDir("etcd-node-2"), ".server.key.tmp99"),
	}
	for _, f := range stale {
		if err := os.WriteFile(f, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(p.CADir(), "..link.tmp777")
	os.Symlink("..data/ca.key", link)
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(stale, link) {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", f)
		}
	}
	checkConverged(t, s, "stale files")
}

// Members of a cluster that never started stay "new" even when the run
// that bootstrapped them was killed between two nodes' etcd.conf.yml:
// the state comes from PKI/initial-cluster.json, not from which configs
// exist.
func TestInitialClusterStateSurvivesACrashBetweenConfigs(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	// What the kill leaves: node 1's config written, the others' not.
	os.Remove(p.NodeConfig("etcd-node-2"))
	os.Remove(p.NodeConfig("etcd-node-3"))
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"etcd-node-1", "etcd-node-2", "etcd-node-3"} {
		cfg, err := pki.ReadNodeConfig(p.NodeConfig(n))
		if err != nil || cfg.InitialClusterState != "new" {
			t.Errorf("%s: initial-cluster-state %q (%v), want new", n, cfg.InitialClusterState, err)
		}
	}
}

// A PKI made before initial-cluster.json existed keeps its members' states.
func TestInitialClusterStateOfAnOlderPKI(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	grown := spec(t, strings.Replace(threeNodes, "clients:", "  - name: etcd-node-4\n    ips: [10.0.0.14]\nclients:", 1), s.PKIDir)
	if _, err := Init(context.Background(), pki.New(grown), Options{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(p.InitialCluster())
	if _, err := Init(context.Background(), pki.New(grown), Options{}); err != nil {
		t.Fatal(err)
	}
	checkConverged(t, grown, "record removed")
}

// Every target is checked before the first write: a config path that is
// a directory, or a file that is immutable, is an input error and no
// CA or certificate is written.
func TestInitChecksEveryTargetBeforeWriting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, pkiDir string) string
		want  string
	}{
		{"config path is a directory", func(t *testing.T, pkiDir string) string {
			d := pki.Paths{PKI: pkiDir}.APIServerFlags()
			os.MkdirAll(d, 0o700)
			return d
		}, "apiserver/etcd-flags: is a directory"},
		{"node config path is a directory", func(t *testing.T, pkiDir string) string {
			d := pki.Paths{PKI: pkiDir}.NodeConfig("etcd-node-3")
			os.MkdirAll(d, 0o700)
			return d
		}, "etcd-node-3/etcd.conf.yml: is a directory"},
		{"certificate path is a directory", func(t *testing.T, pkiDir string) string {
			d := filepath.Join(pki.Paths{PKI: pkiDir}.NodeCertDir("etcd-node-2"), "peer.key")
			os.MkdirAll(d, 0o700)
			return d
		}, "etcd-node-2/etcd/peer.key: is a directory, not a regular file"},
		{"immutable config", func(t *testing.T, pkiDir string) string {
			f := pki.Paths{PKI: pkiDir}.KubeadmExternal()
			os.MkdirAll(filepath.Dir(f), 0o700)
			os.WriteFile(f, []byte("old"), 0o644)
			if !chattr(t, "+i", f) {
				t.Skip("chattr +i not available here")
			}
			t.Cleanup(func() { chattr(t, "-i", f) })
			return f
		}, "kubeadm-etcd-external.yaml: immutable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkiDir := filepath.Join(t.TempDir(), "pki")
			tc.setup(t, pkiDir)
			before := contents(t, pkiDir)
			_, err := Init(context.Background(), pki.New(spec(t, threeNodes, pkiDir)), Options{})
			checkInputError(t, err, tc.want)
			if after := contents(t, pkiDir); after != before {
				t.Errorf("init wrote before failing:\n%s", diffLines(before, after))
			}
		})
	}
}

func chattr(t *testing.T, flag, path string) bool {
	t.Helper()
	return runCmd("chattr", flag, path) == nil
}

// Two inits on one directory at the same time never leave two CAs: the
// second either finds the first's CA or fails naming the lock.
func TestConcurrentInitsShareOneCA(t *testing.T) {
	for round := 0; round < 5; round++ {
		pkiDir := filepath.Join(t.TempDir(), "pki")
		s := spec(t, threeNodes, pkiDir)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		results := make([]*Result, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = Init(context.Background(), pki.New(s), Options{})
			}()
		}
		wg.Wait()
		ok, minted := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
				if slices.Contains(results[i].Created, "etcd-ca") {
					minted++
				}
			case errors.Is(err, pkilock.ErrLocked):
				if !strings.Contains(err.Error(), filepath.Join(pkiDir, pkilock.File)) {
					t.Errorf("lock error does not name the lock: %v", err)
				}
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok == 0 {
			t.Fatalf("round %d: neither init succeeded", round)
		}
		if minted > 1 {
			t.Fatalf("round %d: both inits succeeded, each creating a CA", round)
		}
		checkConverged(t, s, "concurrent inits")
	}
}

// Every writer takes the lock: while it is held, init, renew and issue
// refuse (exit 1) and change nothing.
func TestWritersRefuseWhileLocked(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	held, err := pkilock.Acquire(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	os.Remove(pki.Paths{PKI: s.PKIDir}.NodeConfig("etcd-node-1")) // init has work to do
	before := contents(t, s.PKIDir)
	_, ierr := Init(context.Background(), pki.New(s), Options{})
	_, rerr := Renew(context.Background(), pki.New(s), pki.New(s).Targets, RenewOptions{})
	_, oerr := One(context.Background(), pki.New(s), OneRequest{Kind: "client", Name: "ops"}, Options{})
	for name, err := range map[string]error{"init": ierr, "renew": rerr, "issue": oerr} {
		if !errors.Is(err, pkilock.ErrLocked) {
			t.Errorf("%s while locked: %v, want ErrLocked", name, err)
		}
	}
	if after := contents(t, s.PKIDir); after != before {
		t.Errorf("a refused writer changed the tree:\n%s", diffLines(before, after))
	}
}

// Two renewals within one second keep both backups.
func TestRenewBackupsAreNeverShared(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	// Both runs in the same second, whatever the clock does.
	now := time.Now().Truncate(time.Second)
	o := RenewOptions{Options: Options{Now: func() time.Time { return now }}}
	ts := pki.New(s).Targets[:1]
	first := mustRead(t, ts[0].KeyPath())
	r1, err := Renew(context.Background(), pki.New(s), ts, o)
	if err != nil {
		t.Fatal(err)
	}
	second := mustRead(t, ts[0].KeyPath())
	r2, err := Renew(context.Background(), pki.New(s), ts, o)
	if err != nil {
		t.Fatal(err)
	}
	if r1[0].Backup == r2[0].Backup {
		t.Fatalf("both renewals backed up into %s", r1[0].Backup)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(r1[0].Backup, ts[0].KeyName)), first) ||
		!bytes.Equal(mustRead(t, filepath.Join(r2[0].Backup, ts[0].KeyName)), second) {
		t.Error("a backup does not hold the pair it replaced")
	}
}

// Every directory etcdpki owns is 0700, and init puts it back when it
// is not.
func TestInitEnforcesDirectoryModes(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	cur, _ := atomicdir.Current(p.NodeCertDir("etcd-node-1"))
	loose := []string{s.PKIDir, filepath.Join(s.PKIDir, "nodes"), p.NodeDir("etcd-node-1"), p.NodeCertDir("etcd-node-1"), cur, p.APIServerDir(), p.ClientDir("etcd-admin")}
	for _, d := range loose {
		os.Chmod(d, 0o755)
	}
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range loose {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s: mode %04o after init, want 0700", d, m)
		}
	}
	checkConverged(t, s, "modes loosened")
}

func runCmd(name string, args ...string) error {
	return exec.Command(name, args...).Run()
}
