package rotate_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/internal/testharness/oldlayout"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/verify"
)

// colocated is a cluster whose members run as on kubeadm control-plane
// hosts: member i runs from hosts[i] (that host's /etc/kubernetes/pki),
// which receives its node bundle and kube-apiserver's bundle, both
// copied with rsync by rotate's deploy templates (liveDeploy). The kube-apiserver's
// dir is member 1's, the co-located case the spec allows.
func colocated(t *testing.T) (*etcdtest.Cluster, []string) {
	t.Helper()
	base := t.TempDir()
	var hosts []string
	for i := 1; i <= 3; i++ {
		hosts = append(hosts, filepath.Join(base, fmt.Sprintf("host%d", i), "pki"))
	}
	var toAll []string
	for _, h := range hosts {
		toAll = append(toAll, fmt.Sprintf("mkdir -p '%s' && ", h)+liveDeploy("{{.Bundle}}", "'"+h+"'"))
	}
	c := etcdtest.New(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		f.Local = false
		for i := range f.Nodes {
			f.Nodes[i].Dir = hosts[i]
			f.Nodes[i].DataDir = filepath.Join(base, fmt.Sprintf("host%d", i+1), "data")
			f.Nodes[i].Deploy = liveDeploy("{{.Bundle}}", "{{.Dir}}")
		}
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Dir: hosts[0], Deploy: strings.Join(toAll, " && ")})
	}})
	return c, hosts
}

// liveDeploy is docs/files.md's deploy for a host whose member runs: rsync
// in three passes, so that every new version is whole before a store's
// ..data names it, and every store's ..data exists before a name points
// through it (one rsync -a writes a directory's links before its
// subdirectories' files).
func liveDeploy(bundle, dir string) string {
	return fmt.Sprintf("rsync -a --exclude=..data --include='*/' --include='..*/**' --exclude='*' %[1]s/ %[2]s/ && "+
		"rsync -a --include='*/' --include=..data --exclude='*' %[1]s/ %[2]s/ && rsync -a %[1]s/ %[2]s/", bundle, dir)
}

// copyBundle copies a bundle's contents into dir as an operator would.
func copyBundle(t *testing.T, tool, bundle, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	switch tool {
	case "cp -a":
		cmd = exec.Command("cp", "-a", bundle+"/.", dir+"/")
	case "rsync -a":
		cmd = exec.Command("rsync", "-a", bundle+"/", dir+"/")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s %s: %v\n%s", tool, bundle, dir, err, out)
	}
}

// copyBoth copies member i's node bundle and kube-apiserver's bundle into
// dir in the given order.
func copyBoth(t *testing.T, c *etcdtest.Cluster, tool string, nodeFirst bool, i int, dir string) {
	t.Helper()
	node, api := c.Paths.NodeDir(c.Members[i].Name), c.Paths.APIServerDir()
	if nodeFirst {
		copyBundle(t, tool, node, dir)
		copyBundle(t, tool, api, dir)
	} else {
		copyBundle(t, tool, api, dir)
		copyBundle(t, tool, node, dir)
	}
}

// checkHostFiles checks that every file of both bundles resolves in dir,
// that each pair matches, and that each holds the bytes the PKI holds
// now (the latest deploy arrived, nothing older shows through).
func checkHostFiles(t *testing.T, c *etcdtest.Cluster, node, dir string) {
	t.Helper()
	inv := pki.New(c.Spec)
	for _, b := range inv.Bundles {
		if b.Owner != node && b.Owner != cluster.ClientAPIServer {
			continue
		}
		files := []string{b.CAPath()}
		for _, id := range b.Targets {
			tg, _ := inv.Target(id)
			files = append(files, tg.CertPath(), tg.KeyPath())
			crt, key := b.OnHost(dir, tg.CertPath()), b.OnHost(dir, tg.KeyPath())
			if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
				t.Errorf("%s: %s: %v", dir, id, err)
			}
		}
		for _, f := range files {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(b.OnHost(dir, f))
			if err != nil {
				t.Errorf("%s does not resolve: %v", b.OnHost(dir, f), err)
			} else if !bytes.Equal(got, want) && filepath.Base(f) != pki.CAFile {
				t.Errorf("%s holds other bytes than %s", b.OnHost(dir, f), f)
			}
		}
	}
}

// checkServesFromHost makes fresh handshakes with member i: on its client
// port with kube-apiserver's files as they are in dir (a linearizable
// read), and on its peer port with its healthcheck client pair from dir,
// where the peer certificate served must be dir's etcd/peer.crt.
func checkServesFromHost(t *testing.T, c *etcdtest.Cluster, i int, dir string) {
	t.Helper()
	m := c.Members[i]
	cfg, err := etcdtest.TLSConfig(filepath.Join(dir, "etcd", "ca.crt"), filepath.Join(dir, "apiserver-etcd-client.crt"), filepath.Join(dir, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatalf("%s: kube-apiserver's files: %v", dir, err)
	}
	cli := c.ClientTLS(t, cfg, m.ClientURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "coexist"); err != nil {
		t.Errorf("%s: read with the files in %s: %v", m.Name, dir, err)
	}
	cli.Close()
	peerCfg, err := etcdtest.TLSConfig(filepath.Join(dir, "etcd", "ca.crt"), filepath.Join(dir, "etcd", "healthcheck-client.crt"), filepath.Join(dir, "etcd", "healthcheck-client.key"))
	if err != nil {
		t.Fatalf("%s: healthcheck files: %v", dir, err)
	}
	peerCfg.ServerName = "127.0.0.1"
	host := strings.TrimPrefix(m.PeerURL, "https://")
	conn, err := tls.DialWithDialer(&netDialer, "tcp", host, peerCfg)
	if err != nil {
		t.Errorf("%s: peer handshake: %v", m.Name, err)
		return
	}
	defer conn.Close()
	served := conn.ConnectionState().PeerCertificates[0]
	want := readCert(t, filepath.Join(dir, "etcd", "peer.crt"))
	if !served.Equal(want) {
		t.Errorf("%s serves peer serial %x, %s holds %x", m.Name, served.SerialNumber, dir, want.SerialNumber)
	}
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Both bundles a control-plane host receives land in one directory, with
// cp -a and with rsync -a, in both orders, any number of times, and the
// member running from it keeps serving; then a rotation that renews
// everything deploys both under load with no failed request and no
// restart, and one that deploys only kube-apiserver's bundle leaves the
// member's files as they were.
func TestBundlesShareAHostDirectory(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c, hosts := colocated(t)
	// The copy the issue reported: the node's bundle, then the
	// apiserver's, with cp -a. Every member starts from it.
	for i, h := range hosts {
		copyBoth(t, c, "cp -a", true, i, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"cp -a", "rsync -a"} {
		for _, nodeFirst := range []bool{true, false} {
			what := fmt.Sprintf("%s, node first %v", tool, nodeFirst)
			// Over the live directories, and into a fresh one.
			for i, h := range hosts {
				copyBoth(t, c, tool, nodeFirst, i, h)
				checkHostFiles(t, c, c.Members[i].Name, h)
			}
			fresh := filepath.Join(t.TempDir(), "pki")
			copyBoth(t, c, tool, nodeFirst, 0, fresh)
			checkHostFiles(t, c, c.Members[0].Name, fresh)
			// A member started from the shared directory (its CA file is
			// read only at start), and fresh handshakes on every member.
			m := c.Members[1]
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			if err := m.WaitReady(ctx); err != nil {
				t.Fatalf("%s: %s does not start from %s: %v\n%s", what, m.Name, hosts[1], err, m.LogTail(20))
			}
			for i, h := range hosts {
				checkServesFromHost(t, c, i, h)
			}
			if t.Failed() {
				t.Fatalf("after %s", what)
			}
		}
	}

	t.Run("RotationDeploysBothUnderLoad", func(t *testing.T) {
		before := livetest.Pids(c)
		ld := livetest.StartLoad(t, c)
		var out bytes.Buffer
		res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
		st := ld.Stop()
		if err != nil {
			t.Fatalf("rotate: %v\n%s", err, out.String())
		}
		if len(res.Proofs) != len(c.Members) || len(res.Members) != 0 {
			t.Errorf("proofs %d, restarts %d; want %d proofs and no restart:\n%s", len(res.Proofs), len(res.Members), len(c.Members), out.String())
		}
		if st.Fails != 0 {
			t.Errorf("%d of %d requests failed: %v", st.Fails, st.Ops, st.Failures)
		}
		livetest.CheckAcked(t, c, c.APIServerTLS(), st)
		if now := livetest.Pids(c); !equalPIDs(now, before) {
			t.Errorf("members restarted: pids %v, were %v", now, before)
		}
		for i, h := range hosts {
			checkHostFiles(t, c, c.Members[i].Name, h)
			checkServesFromHost(t, c, i, h)
		}
		t.Logf("%d requests, 0 failed, worst %s, rotation %s", st.Ops, st.Worst, res.Took)
		// verify --spec, run on member 1's host, checks its shared directory.
		rep, err := verify.Evaluate(context.Background(), pki.New(c.Spec), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for _, ch := range rep.Checks {
			if ch.Name == verify.CheckColocated {
				rows++
				if ch.Status != verify.OK || ch.Target != hosts[0] {
					t.Errorf("verify: %+v", ch)
				}
			}
		}
		if rows != 1 {
			t.Errorf("verify gave %d co-located rows, want 1 (member 1's host)", rows)
		}
	})

	t.Run("DeployingOnlyTheAPIServerBundle", func(t *testing.T) {
		inv := pki.New(c.Spec)
		api, _ := inv.Target("apiserver-etcd-client")
		peerBefore := readCert(t, filepath.Join(hosts[0], "etcd", "peer.crt"))
		if _, err := issue.Renew(context.Background(), pki.New(c.Spec), []pki.Target{api}, issue.RenewOptions{}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{Out: &out}); err != nil {
			t.Fatalf("rotate: %v\n%s", err, out.String())
		}
		if strings.Contains(out.String(), "deployed in") {
			t.Errorf("a node bundle was deployed, only the apiserver's should be:\n%s", out.String())
		}
		for i, h := range hosts {
			checkHostFiles(t, c, c.Members[i].Name, h)
			checkServesFromHost(t, c, i, h)
		}
		if now := readCert(t, filepath.Join(hosts[0], "etcd", "peer.crt")); !now.Equal(peerBefore) {
			t.Error("the member's peer certificate changed")
		}
	})
}

func equalPIDs(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A host running from a PKI made before named stores (the old layout on
// the host and in the PKI) is updated in place: the next rotation
// migrates the PKI, renews everything and deploys the new layout over the
// old one under load, and every member keeps serving without a restart.
func TestOldLayoutHostUpdatedInPlace(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c, hosts := colocated(t)
	oldlayout.Write(t, c.Paths.PKI)
	for i, h := range hosts {
		// What worked before: the apiserver's bundle, then the node's.
		copyBoth(t, c, "rsync -a", false, i, h)
		if _, err := os.Readlink(filepath.Join(h, "etcd", "..data")); err != nil {
			t.Fatalf("%s is not in the old layout: %v", h, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	before := livetest.Pids(c)
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
	st := ld.Stop()
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if len(res.Proofs) != len(c.Members) {
		t.Errorf("proved %d members, want %d:\n%s", len(res.Proofs), len(c.Members), out.String())
	}
	if !strings.Contains(out.String(), "to the named-store layout (same bytes)") {
		t.Errorf("rotate did not say it moved the stores:\n%s", out.String())
	}
	if st.Fails != 0 {
		t.Errorf("%d of %d requests failed: %v", st.Fails, st.Ops, st.Failures)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if now := livetest.Pids(c); !equalPIDs(now, before) {
		t.Errorf("members restarted: pids %v, were %v", now, before)
	}
	if _, err := os.Lstat(filepath.Join(c.Paths.NodeCertDir(c.Members[0].Name), "..data")); err == nil {
		t.Error("the PKI still has the old layout's ..data")
	}
	for i, h := range hosts {
		checkHostFiles(t, c, c.Members[i].Name, h)
		checkServesFromHost(t, c, i, h)
		target, _ := os.Readlink(filepath.Join(h, "etcd", "server.crt"))
		if !strings.HasPrefix(target, "..etcd-") {
			t.Errorf("%s/etcd/server.crt -> %s, not into the node's store", h, target)
		}
	}
}
