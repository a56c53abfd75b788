package issue

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

const threeNodes = `name: test
certs:
  validity: 365d
nodes:
  - name: etcd-node-1
    ips: [10.0.0.11]
    dns: [etcd-node-1.example.internal]
  - name: etcd-node-2
    ips: [10.0.0.12]
  - name: etcd-node-3
    ips: [10.0.0.13]
clients:
  - name: etcd-admin
    organization: [ops]
`

func spec(t testing.TB, yaml, dir string) *cluster.Spec {
	t.Helper()
	s, err := cluster.Parse([]byte(yaml), "", cluster.Options{PKIDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func initTree(t testing.TB, yaml string) (*cluster.Spec, *Result) {
	t.Helper()
	s := spec(t, yaml, filepath.Join(t.TempDir(), "pki"))
	res, err := Init(context.Background(), pki.New(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, res
}

func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ParseCert(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// snapshot records every path, mode, link target and content of a tree,
// so "changes nothing" can be checked byte for byte.
func snapshot(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := os.Lstat(p)
		line := fmt.Sprintf("%s %v %d", p, info.Mode(), info.ModTime().UnixNano())
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		} else if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			line += " " + string(data)
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestInitCertificates(t *testing.T) {
	s, res := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	if len(res.Created) != 1+3*3+1+1 || len(res.Reused) != 0 {
		t.Errorf("created %v, reused %v", res.Created, res.Reused)
	}
	caCert := readCert(t, p.CACert())
	if !caCert.IsCA || caCert.Subject.CommonName != "etcd-ca" || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v CN=%q usage=%v", caCert.IsCA, caCert.Subject.CommonName, caCert.KeyUsage)
	}
	if years := caCert.NotAfter.Sub(caCert.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA validity %.2f years, want 10", years)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	now := time.Now()
	for _, tg := range pki.New(s).Targets {
		c := readCert(t, tg.CertPath())
		for _, u := range tg.Kind.Usages {
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				t.Errorf("%s does not verify for usage %v: %v", tg.ID, u, err)
			}
		}
		if !slices.Equal(c.ExtKeyUsage, tg.Kind.Usages) {
			t.Errorf("%s EKUs %v, want exactly %v", tg.ID, c.ExtKeyUsage, tg.Kind.Usages)
		}
		if c.IsCA {
			t.Errorf("%s is a CA", tg.ID)
		}
		if c.NotBefore.After(now.Add(-time.Minute)) || c.NotBefore.Before(now.Add(-10*time.Minute)) {
			t.Errorf("%s notBefore %v is not back-dated a few minutes", tg.ID, c.NotBefore)
		}
		// Validity counts from issue time; the back-dating comes on top.
		if d := c.NotAfter.Sub(c.NotBefore.Add(ca.Backdate)); d != 365*24*time.Hour {
			t.Errorf("%s validity %v", tg.ID, d)
		}
		k, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key is %s, want ecdsa-256", tg.ID, certx.KeyDescription(c.PublicKey))
		}
		keyData, _ := os.ReadFile(tg.KeyPath())
		if err := ca.CheckPair(mustRead(t, tg.CertPath()), keyData); err != nil {
			t.Errorf("%s: %v", tg.ID, err)
		}
		if got := certx.SANs(c); !sameSet(got, tg.Hosts) {
			t.Errorf("%s SANs %v, want %v", tg.ID, got, tg.Hosts)
		}
		if c.Subject.CommonName != tg.CommonName {
			t.Errorf("%s CN %q, want %q", tg.ID, c.Subject.CommonName, tg.CommonName)
		}
	}
	// kubeadm's subjects and SANs, checked literally.
	srv := readCert(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.crt"))
	if got := strings.Join(certx.SANs(srv), ","); got != "10.0.0.11,127.0.0.1,::1,etcd-node-1.example.internal,etcd-node-1,localhost" {
		t.Errorf("server SANs %s", got)
	}
	if c := readCert(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "healthcheck-client.crt")); c.Subject.CommonName != "kube-etcd-healthcheck-client" || len(certx.SANs(c)) != 0 {
		t.Errorf("healthcheck CN %q SANs %v", c.Subject.CommonName, certx.SANs(c))
	}
	api, _ := pki.New(s).Target("apiserver-etcd-client")
	if c := readCert(t, api.CertPath()); c.Subject.CommonName != "kube-apiserver-etcd-client" {
		t.Errorf("apiserver client CN %q", c.Subject.CommonName)
	}
	admin, _ := pki.New(s).Target("client/etcd-admin")
	if c := readCert(t, admin.CertPath()); c.Subject.CommonName != "etcd-admin" || !slices.Equal(c.Subject.Organization, []string{"ops"}) {
		t.Errorf("admin subject %v", c.Subject)
	}
}

func TestInitModesAndCAKeyConfinement(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	check := func(path string, want fs.FileMode) {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", path, info.Mode().Perm(), want)
		}
	}
	check(p.CAKey(), 0o400)
	check(p.CADir(), 0o700)
	for _, tg := range pki.New(s).Targets {
		check(tg.KeyPath(), 0o600)
		check(tg.Dir, 0o700)
	}
	// The CA key is in no bundle.
	caKey := mustRead(t, p.CAKey())
	filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if d.Type().IsRegular() && !strings.HasPrefix(path, p.CADir()+"/") && bytes.Equal(mustRead(t, path), caKey) {
			t.Errorf("CA key copied to %s", path)
		}
		return nil
	})
}

func TestInitIdempotent(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	before := snapshot(t, s.PKIDir)
	var out bytes.Buffer
	res, err := Init(context.Background(), pki.New(s), Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 0 || len(res.Written) != 0 || len(res.Reused) != 12 {
		t.Errorf("second init: created %v written %v reused %d", res.Created, res.Written, len(res.Reused))
	}
	if after := snapshot(t, s.PKIDir); after != before {
		t.Error("second init changed the tree")
	}
	if !strings.Contains(out.String(), "[certs] reused etcd-node-1/etcd-server") {
		t.Errorf("output does not say what was reused:\n%s", out.String())
	}
}

func TestInitAddNode(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	old := map[string][]byte{}
	for _, n := range []string{"etcd-node-1", "etcd-node-2", "etcd-node-3"} {
		old[n] = mustRead(t, filepath.Join(p.NodeCertDir(n), "server.crt"))
	}
	grown := spec(t, strings.Replace(threeNodes, "clients:", "  - name: etcd-node-4\n    ips: [10.0.0.14]\nclients:", 1), s.PKIDir)
	res, err := Init(context.Background(), pki.New(grown), Options{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Created)
	if want := []string{"etcd-node-4/etcd-healthcheck-client", "etcd-node-4/etcd-peer", "etcd-node-4/etcd-server"}; !slices.Equal(res.Created, want) {
		t.Errorf("created %v, want only node 4's certificates", res.Created)
	}
	for n, data := range old {
		if !bytes.Equal(data, mustRead(t, filepath.Join(p.NodeCertDir(n), "server.crt"))) {
			t.Errorf("%s's certificate changed", n)
		}
	}
	cfg4, _ := pki.ReadNodeConfig(p.NodeConfig("etcd-node-4"))
	cfg1, _ := pki.ReadNodeConfig(p.NodeConfig("etcd-node-1"))
	if cfg4.InitialClusterState != "existing" || cfg1.InitialClusterState != "new" {
		t.Errorf("states: node-4 %q node-1 %q", cfg4.InitialClusterState, cfg1.InitialClusterState)
	}
	for _, c := range []pki.EtcdConfig{cfg1, cfg4} {
		if !strings.Contains(c.InitialCluster, "etcd-node-4=https://10.0.0.14:2380") {
			t.Errorf("%s initial-cluster lacks node 4: %s", c.Name, c.InitialCluster)
		}
	}
	if flags := string(mustRead(t, p.APIServerFlags())); !strings.Contains(flags, "https://10.0.0.14:2379") {
		t.Errorf("apiserver flags lack node 4:\n%s", flags)
	}
}

func TestNodeConfig(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	c, err := pki.ReadNodeConfig(pki.Paths{PKI: s.PKIDir}.NodeConfig("etcd-node-2"))
	if err != nil {
		t.Fatal(err)
	}
	want := pki.EtcdConfig{
		Name: "etcd-node-2", DataDir: "/var/lib/etcd",
		ListenClientURLs: "https://10.0.0.12:2379,https://127.0.0.1:2379", AdvertiseClientURLs: "https://10.0.0.12:2379",
		ListenPeerURLs: "https://10.0.0.12:2380", InitialAdvertisePeerURLs: "https://10.0.0.12:2380",
		InitialCluster:      "etcd-node-1=https://10.0.0.11:2380,etcd-node-2=https://10.0.0.12:2380,etcd-node-3=https://10.0.0.13:2380",
		InitialClusterState: "new", InitialClusterToken: "test", StrictReconfigCheck: true,
		ClientTransportSecurity: pki.TransportSecurity{CertFile: "/etc/kubernetes/pki/etcd/server.crt", KeyFile: "/etc/kubernetes/pki/etcd/server.key", TrustedCAFile: "/etc/kubernetes/pki/etcd/ca.crt", ClientCertAuth: true},
		PeerTransportSecurity:   pki.TransportSecurity{CertFile: "/etc/kubernetes/pki/etcd/peer.crt", KeyFile: "/etc/kubernetes/pki/etcd/peer.key", TrustedCAFile: "/etc/kubernetes/pki/etcd/ca.crt", ClientCertAuth: true},
	}
	if c != want {
		t.Errorf("config\n got %+v\nwant %+v", c, want)
	}
}

func TestInitKeyAlgorithms(t *testing.T) {
	for _, tc := range []struct{ ca, leaf, want string }{
		{"keyAlgorithm: rsa\n  keySize: 2048", "", "rsa-2048"},
		{"keyAlgorithm: ecdsa\n  keySize: 384", "", "ecdsa-384"},
		{"keyAlgorithm: rsa\n  keySize: 3072", "keyAlgorithm: ecdsa\n  keySize: 256", "ecdsa-256"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			y := "ca:\n  " + tc.ca + "\n"
			if tc.leaf != "" {
				y += "certs:\n  " + tc.leaf + "\n"
			}
			s, _ := initTree(t, y+"nodes:\n  - name: n1\n    ips: [10.0.0.1]\n")
			c := readCert(t, filepath.Join(pki.Paths{PKI: s.PKIDir}.NodeCertDir("n1"), "peer.crt"))
			if got := certx.KeyDescription(c.PublicKey); got != tc.want {
				t.Errorf("leaf key %s, want %s", got, tc.want)
			}
			if _, rsaCA := readCert(t, pki.Paths{PKI: s.PKIDir}.CACert()).PublicKey.(*rsa.PublicKey); rsaCA != strings.Contains(tc.ca, "rsa") {
				t.Errorf("CA key type wrong")
			}
		})
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
