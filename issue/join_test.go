package issue

import (
	"bytes"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// joinHost is node etcd-node-1's bundle on an empty host directory, as a
// joining agent sees it, with the tree's CA and its CRL.
func joinHost(t *testing.T) (pki.Bundle, []pki.Target, *ca.CA, []byte, []byte, *cluster.Spec) {
	t.Helper()
	s, _ := initTree(t, threeNodes)
	authority, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := authority.SignCRL(nil, big.NewInt(7), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host")
	b, ts, err := pki.New(s).OnHost("etcd-node-1", host)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.Paths{PKI: s.PKIDir}.CACert())
	if err != nil {
		t.Fatal(err)
	}
	return b, ts, authority, caPEM, crl, s
}

// TestSeedTrustFreshBundleOnly: a fresh bundle gets ca.crt and crl.der
// in one switch; a pair then installs against them; a second seed, even
// with another CA, changes nothing.
func TestSeedTrustFreshBundleOnly(t *testing.T) {
	b, ts, authority, caPEM, crl, s := joinHost(t)
	seeded, err := SeedTrust(b, caPEM, crl)
	if err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if got, err := pki.ReadStored(b.CADir, pki.CAFile); err != nil || !bytes.Equal(got, caPEM) {
		t.Fatalf("ca.crt after the seed: %v", err)
	}
	if got, err := pki.ReadStored(b.CADir, pki.CRLFile); err != nil || !bytes.Equal(got, crl) {
		t.Fatalf("crl.der after the seed: %v", err)
	}
	c, k := signFor(t, authority, s, ts[0], nil)
	if err := InstallPair(ts[0], c, k); err != nil {
		t.Fatalf("install a pair on the seeded bundle: %v", err)
	}
	if fi, err := os.Stat(ts[0].KeyPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v %v", fi, err)
	}
	_, _, _, otherPEM, otherCRL, _ := joinHost(t)
	if seeded, err := SeedTrust(b, otherPEM, otherCRL); err != nil || seeded {
		t.Fatalf("second seed: %v %v (a bundle with a ca.crt is left alone)", seeded, err)
	}
	if got, _ := pki.ReadStored(b.CADir, pki.CAFile); !bytes.Equal(got, caPEM) {
		t.Fatal("a second seed replaced ca.crt")
	}
}

// TestSeedTrustRefusesBadInput: a CRL another CA signed, a leaf for a CA
// and garbage are refused with the file named, and nothing is written.
func TestSeedTrustRefusesBadInput(t *testing.T) {
	b, ts, authority, caPEM, crl, s := joinHost(t)
	_, _, _, _, otherCRL, _ := joinHost(t)
	leaf, _ := signFor(t, authority, s, ts[0], nil)
	for name, in := range map[string][2][]byte{
		"foreign CRL": {caPEM, otherCRL},
		"leaf as CA":  {leaf, crl},
		"garbage CRL": {caPEM, []byte("nope")},
		"empty CA":    {nil, crl},
	} {
		_, err := SeedTrust(b, in[0], in[1])
		if err == nil || !strings.Contains(err.Error(), "etcd-node-1") {
			t.Errorf("%s: %v, want a refusal naming the owner", name, err)
		}
		if _, err := os.Stat(b.CADir); err == nil {
			if cas, _ := pki.BundleCAs(b.CADir); len(cas) > 0 {
				t.Fatalf("%s: ca.crt written", name)
			}
		}
	}
}

// TestWriteJoinConfigs: etcd.conf.yml and etcd.env name the host's files
// and the initial-cluster given, state existing; without the bundle's CRL
// nothing is written (a member started from that etcd.env would refuse
// every connection).
func TestWriteJoinConfigs(t *testing.T) {
	b, _, _, caPEM, crl, s := joinHost(t)
	n, _ := s.Node("etcd-node-1")
	const ic = "etcd-node-2=https://10.0.0.12:2380,etcd-node-1=https://10.0.0.11:2380"
	if err := WriteJoinConfigs(s, n, b.Root, ic); err == nil {
		t.Fatal("configs written without a CRL in the bundle")
	}
	if _, err := os.Stat(filepath.Join(b.Root, pki.EnvFile)); err == nil {
		t.Fatal("etcd.env written without a CRL in the bundle")
	}
	if _, err := SeedTrust(b, caPEM, crl); err != nil {
		t.Fatal(err)
	}
	if err := WriteJoinConfigs(s, n, b.Root, ic); err != nil {
		t.Fatal(err)
	}
	c, err := pki.ReadNodeConfig(filepath.Join(b.Root, "etcd.conf.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.InitialCluster != ic || c.InitialClusterState != "existing" || !strings.HasPrefix(c.ClientTransportSecurity.CertFile, b.Root+"/") {
		t.Errorf("etcd.conf.yml: %+v", c)
	}
	env, _ := os.ReadFile(filepath.Join(b.Root, pki.EnvFile))
	vars, err := pki.ParseEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if vars["ETCD_INITIAL_CLUSTER"] != ic || vars["ETCD_INITIAL_CLUSTER_STATE"] != "existing" || vars[pki.EnvClientCRL] != filepath.Join(b.CADir, pki.CRLFile) {
		t.Errorf("etcd.env: %v", vars)
	}
}

// TestWriteJoinConfigsRefusesForeignInitialCluster: initial-cluster comes
// from the status (etcd's member list as the controller recorded it),
// which more identities may write than the spec. A value that names a
// node not in the spec, a URL that is not a plain https peer URL, or this
// node under other URLs than its spec's (or not at all) writes nothing.
func TestWriteJoinConfigsRefusesForeignInitialCluster(t *testing.T) {
	b, _, _, caPEM, crl, s := joinHost(t)
	if _, err := SeedTrust(b, caPEM, crl); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Node("etcd-node-1")
	self := "etcd-node-1=" + n.PeerURLs[0]
	for _, c := range []struct{ ic, want string }{
		{"etcd-node-2=https://10.0.0.12:2380", "does not name etcd-node-1"},
		{self + ",evil=https://10.9.9.9:2380", `"evil" is not a node in the spec`},
		{self + ",etcd-node-2=http://10.0.0.12:2380", `"http://10.0.0.12:2380" is not an https URL`},
		{self + ",etcd-node-2=https://10.0.0.12:2380/x?y", `"https://10.0.0.12:2380/x?y" is not an https URL`},
		{self + "\nETCD_CLIENT_CERT_AUTH=false", "is not an https URL"},
		{self + ",etcd-node-2", `"etcd-node-2" is not name=URL`},
		{"etcd-node-1=https://10.9.9.9:2380", "names etcd-node-1 under https://10.9.9.9:2380, not its spec peer URLs"},
		{"", `"" is not name=URL`},
	} {
		err := WriteJoinConfigs(s, n, b.Root, c.ic)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("initial-cluster %q: err = %v, want %q", c.ic, err, c.want)
		}
		if _, err := os.Stat(filepath.Join(b.Root, pki.EnvFile)); err == nil {
			t.Fatalf("initial-cluster %q: etcd.env written", c.ic)
		}
	}
	if err := WriteJoinConfigs(s, n, b.Root, "etcd-node-2=https://10.0.0.99:2380,"+self); err != nil {
		t.Errorf("another member under a URL the spec no longer says (an edited peer URL): %v", err)
	}
}

// TestWriteAPIServerConfigsWithAuthOn: the apiserver's etcd-flags and
// kubeadm block an agent writes for a restart grant say what member add
// writes: with auth on, kube-apiserver does not compact etcd (KV.Compact
// is root's), so --etcd-compaction-interval=0 is there too.
func TestWriteAPIServerConfigsWithAuthOn(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	for _, on := range []bool{false, true} {
		s.Auth.Enabled = on
		dir := t.TempDir()
		if err := WriteAPIServerConfigs(s, dir, []string{"https://10.0.0.11:2379"}, "/h/ca.crt", "/h/c.crt", "/h/c.key"); err != nil {
			t.Fatal(err)
		}
		flags, err := os.ReadFile(filepath.Join(dir, filepath.Base(pki.Paths{}.APIServerFlags())))
		if err != nil {
			t.Fatal(err)
		}
		kubeadm, err := os.ReadFile(filepath.Join(dir, filepath.Base(pki.Paths{}.KubeadmExternal())))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(flags), pki.APIServerCompactionOff+"\n"); got != on {
			t.Errorf("auth %v: etcd-flags has %s: %v\n%s", on, pki.APIServerCompactionOff, got, flags)
		}
		if got := strings.Contains(string(kubeadm), "etcd-compaction-interval"); got != on {
			t.Errorf("auth %v: kubeadm block has etcd-compaction-interval: %v\n%s", on, got, kubeadm)
		}
	}
}
