package adopt_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/kubeadmcerts"
	"github.com/etcdpki/etcdpki/pki"
)

// wire is every member's client and peer port serial, as a fresh
// handshake sees it, keyed "NODE/etcd-server" and "NODE/etcd-peer".
func wire(t *testing.T, s *cluster.Spec, cfg *tls.Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range s.Nodes {
		for kind, u := range map[string]string{ca.KindServer.Name: n.ClientURLs[0], ca.KindPeer.Name: n.PeerURLs[0]} {
			addr := strings.TrimPrefix(u, "https://")
			c := cfg.Clone()
			c.InsecureSkipVerify = true
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cert, err := probe.ServingCert(ctx, addr, c)
			cancel()
			if err != nil {
				t.Fatalf("%s %s: %v", n.Name, addr, err)
			}
			out[n.Name+"/"+kind] = certx.Serial(cert)
		}
	}
	return out
}

// snapshot hashes every file under dir, so a test can show that adopt
// changed nothing on the hosts.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, string(filepath.Separator)+"data"+string(filepath.Separator)) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pids(c *kubeadmcerts.Cluster) map[string]int {
	out := map[string]int{}
	for _, m := range c.Members {
		out[m.Name] = m.PID()
	}
	return out
}

func fileSerial(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return certx.Serial(c)
}

// TestAdoptTakesAKubeadmClusterAsItIs adopts a cluster running on
// kubeadm's certificates: pairs imported from two nodes' copies and the
// control plane's, the third node's certificates recorded as held from
// the wire. The members keep their pids and serve the same serials, no
// source file changes, and the PKI lists every certificate with the
// expiry it has on its host.
func TestAdoptTakesAKubeadmClusterAsItIs(t *testing.T) {
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{})
	before, pidsBefore, files := wire(t, c.Spec, c.APIServerTLS()), pids(c), snapshot(t, c.Hosts)
	var out bytes.Buffer
	o := adopt.Options{
		CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key"),
		NodeDirs:   map[string]string{"etcd-1": c.NodePKI(1), "etcd-2": filepath.Join(c.NodePKI(2), "etcd")},
		ClientDirs: map[string]string{cluster.ClientAPIServer: c.APIServerPKI},
		Out:        &out,
	}
	rep, err := adopt.Run(context.Background(), pki.New(c.Spec), o)
	t.Logf("adopt:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if after := wire(t, c.Spec, c.APIServerTLS()); !mapsEqual(before, after) {
		t.Errorf("serials on the wire changed: before %v, after %v", before, after)
	}
	if after := pids(c); !mapsEqual(pidsBefore, after) {
		t.Errorf("pids changed: before %v, after %v", pidsBefore, after)
	}
	if after := snapshot(t, c.Hosts); !mapsEqual(files, after) {
		t.Errorf("files on the hosts changed")
	}
	wantImported := []string{"apiserver-etcd-client", "etcd-1/etcd-healthcheck-client", "etcd-1/etcd-peer", "etcd-1/etcd-server",
		"etcd-2/etcd-healthcheck-client", "etcd-2/etcd-peer", "etcd-2/etcd-server"}
	var imported []string
	for id := range rep.Imported {
		imported = append(imported, id)
	}
	slices.Sort(imported)
	if !slices.Equal(imported, wantImported) {
		t.Errorf("imported %v, want %v", imported, wantImported)
	}
	if len(rep.Held) != 2 || rep.Held["etcd-3/etcd-server"] == nil || rep.Held["etcd-3/etcd-peer"] == nil {
		t.Errorf("held %v, want etcd-3's server and peer certificates", rep.Held)
	}
	if !slices.Equal(rep.Missing, []string{"etcd-3/etcd-healthcheck-client"}) {
		t.Errorf("missing %v, want etcd-3's healthcheck client (never on the wire, no copy given)", rep.Missing)
	}
	inv := pki.New(c.Spec)
	// Imported pairs are the source files byte for byte.
	for id, src := range rep.Imported {
		tg, _ := inv.Target(id)
		got, _ := os.ReadFile(tg.CertPath())
		want, _ := os.ReadFile(src)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s is not %s byte for byte", id, tg.CertPath(), src)
		}
	}
	infos, err := pki.List(inv, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		switch {
		case info.Name == "etcd-3/etcd-healthcheck-client":
			if info.Status != pki.StatusMissing {
				t.Errorf("%s: %s, want missing", info.Name, info.Status)
			}
			continue
		case info.Name == "etcd-ca":
			if info.Status != pki.StatusOK || info.Serial != certx.Serial(c.CA.Cert) {
				t.Errorf("CA: %s serial %s, want ok with the kubeadm CA's serial", info.Status, info.Serial)
			}
			continue
		case strings.HasPrefix(info.Name, "etcd-3/"):
			if info.Status != pki.StatusHeld || !strings.Contains(info.Reason, "held on the host, expires") {
				t.Errorf("%s: %s (%s), want held", info.Name, info.Status, info.Reason)
			}
		default:
			if info.Status != pki.StatusOK {
				t.Errorf("%s: %s (%s), want ok", info.Name, info.Status, info.Reason)
			}
		}
		if info.Expires.IsZero() || time.Until(info.Expires) < 364*24*time.Hour {
			t.Errorf("%s: expires %v, want kubeadm's year", info.Name, info.Expires)
		}
		if serial, ok := before[info.Name]; ok && serial != info.Serial {
			t.Errorf("%s: listed serial %s, the member serves %s", info.Name, info.Serial, serial)
		}
	}
	// Run again: the same PKI directory is brought up to date, and
	// nothing changes on the cluster either.
	out.Reset()
	if _, err := adopt.Run(context.Background(), pki.New(c.Spec), o); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
