package kubeadmcerts

import (
	"context"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// Cluster is a real etcd cluster running on kubeadm's certificates, each
// member from a host directory of its own (HOSTS/NODE/pki is its
// /etc/kubernetes/pki), as an operator has it before adopt.
type Cluster struct {
	*etcdtest.Cluster
	CA *CA
	// Hosts holds one directory per node, and "control-plane" with the
	// apiserver's /etc/kubernetes/pki.
	Hosts string
	// APIServerPKI is the control-plane node's /etc/kubernetes/pki.
	APIServerPKI string
	// Spec is the spec an operator writes for adopt: the members as they
	// run, a fresh PKI directory, and a deploy template that copies a
	// node's bundle into its /etc/kubernetes/pki.
	Spec *cluster.Spec
}

// Options change what Start writes.
type Options struct {
	// Write, when set, writes node i's certificates (1-based) instead of
	// WriteNode: a test's own profiles or file names. The member reads
	// kubeadm's names under pkiDir/etcd.
	Write func(a *CA, i int, pkiDir, node string, ip net.IP)
	// NoHostCheck makes the apiserver's view check the members'
	// certificates' chain but not their names (for a member whose
	// certificate lacks its IP SAN, which etcd itself accepts).
	NoHostCheck bool
}

// Start writes kubeadm's certificates for three members and the
// apiserver, starts the members on them (etcd --config-file with
// kubeadm's paths) and waits until each answers a linearizable read with
// the apiserver's certificate.
func Start(t *testing.T, o Options) *Cluster {
	t.Helper()
	hosts := t.TempDir()
	c := etcdtest.New(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		f.Local = false
		for i := range f.Nodes {
			host := filepath.Join(hosts, f.Nodes[i].Name)
			f.Nodes[i].Dir = filepath.Join(host, "pki")
			f.Nodes[i].DataDir = filepath.Join(host, "data")
			f.Nodes[i].Deploy = "mkdir -p {{.Dir}} && cp -a {{.Bundle}}/. {{.Dir}}/"
		}
	}})
	kc := &Cluster{Cluster: c, CA: NewCA(t), Hosts: hosts, APIServerPKI: filepath.Join(hosts, "control-plane", "pki")}
	for i, n := range c.Spec.Nodes {
		if o.Write != nil {
			o.Write(kc.CA, i+1, n.Dir, n.Name, n.IPs[0])
		} else {
			kc.CA.WriteNode(t, n.Dir, n.Name, n.IPs[0])
		}
	}
	kc.CA.WriteAPIServer(t, kc.APIServerPKI)
	cfg, err := etcdtest.TLSConfig(filepath.Join(kc.APIServerPKI, "etcd", "ca.crt"),
		filepath.Join(kc.APIServerPKI, "apiserver-etcd-client.crt"), filepath.Join(kc.APIServerPKI, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if o.NoHostCheck {
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots})
			return err
		}
	}
	c.UseAPIServerTLS(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	spec := *c.Spec
	spec.PKIDir = filepath.Join(t.TempDir(), "pki")
	kc.Spec = &spec
	return kc
}

// NodePKI is node i's /etc/kubernetes/pki (1-based).
func (c *Cluster) NodePKI(i int) string { return c.Cluster.Spec.Nodes[i-1].Dir }
