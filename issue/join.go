package issue

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// The writes of an agent whose node joins a running cluster: the host
// starts with nothing, so its trust comes first (ca.crt and crl.der, as
// the cluster publishes them), then its pairs (InstallPair), then the
// configs that start its member, joining the member list etcd returned.

// SeedTrust writes a fresh bundle's ca.crt and crl.der in one switch of
// its store: the trust the cluster publishes, which every pair installed
// after it is checked against. A bundle that holds a ca.crt already is
// left alone (its trust changes only through a CA rotation). caPEM must
// be CA certificates and crlDER a CRL one of them signed.
func SeedTrust(b pki.Bundle, caPEM, crlDER []byte) (bool, error) {
	if cas, err := pki.BundleCAs(b.CADir); err != nil || len(cas) > 0 {
		return false, err
	}
	cas, err := certx.ParseCertificates(caPEM)
	if err != nil || len(cas) == 0 {
		return false, input.Errorf("%s for %s: no CA certificate in it: %v", pki.CAFile, b.Owner, err)
	}
	for _, c := range cas {
		if !c.IsCA {
			return false, input.Errorf("%s for %s: serial %s is not a CA certificate", pki.CAFile, b.Owner, pki.ShortSerial(certx.Serial(c)))
		}
	}
	l, err := pki.ParseCRL(crlDER)
	if err != nil {
		return false, input.Errorf("%s for %s: %v", pki.CRLFile, b.Owner, err)
	}
	signed := false
	for _, c := range cas {
		signed = signed || l.CheckSignatureFrom(c) == nil
	}
	if !signed {
		return false, input.Errorf("%s for %s: not signed by a CA of its %s; refusing both", pki.CRLFile, b.Owner, pki.CAFile)
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(b.CAStore(), atomicdir.File{Name: pki.CAFile, Data: caPEM, Mode: atomicdir.CertMode})
	pl.add(b.CAStore(), atomicdir.File{Name: pki.CRLFile, Data: crlDER, Mode: atomicdir.CertMode})
	return true, commitHost(b.Root, pl)
}

// WriteJoinConfigs writes node n's etcd.conf.yml and etcd.env into dir,
// the node's bundle root on its host, as member add writes them into the
// PKI directory (pki.NodeConfig, pki.NodeEnvOf): its files named where
// they lie in dir, initial-cluster as etcd returned it, state existing.
// The CRL the etcd.env names must be in the bundle already (checkCRLs).
func WriteJoinConfigs(s *cluster.Spec, n cluster.Node, dir, initialCluster string) error {
	if err := checkInitialCluster(s, n, initialCluster); err != nil {
		return fmt.Errorf("initial-cluster for %s: %w; refusing to write its configs", n.Name, err)
	}
	n.Dir = dir
	c := pki.NodeConfig(s, n, "existing")
	c.InitialCluster = initialCluster
	data, err := c.Render()
	if err != nil {
		return err
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.configs = append(pl.configs,
		atomicdir.File{Name: filepath.Join(dir, filepath.Base(pki.Paths{}.NodeConfig(n.Name))), Data: data, Mode: configMode},
		atomicdir.File{Name: filepath.Join(dir, pki.EnvFile), Data: pki.NodeEnvOf(c, n), Mode: configMode})
	return commitHost(dir, pl)
}

// WriteAPIServerConfigs writes kube-apiserver's etcd-flags and kubeadm
// etcd.external block into dir, its bundle's root on its host, naming
// endpoints and the bundle's files there: what member add's apiserver
// step writes into the PKI directory (pki.APIServerFlagsFor,
// pki.KubeadmExternalFor, with s's compaction flag), for the apiserver's
// restart to read.
func WriteAPIServerConfigs(s *cluster.Spec, dir string, endpoints []string, caFile, certFile, keyFile string) error {
	flags := strings.Join(pki.WithCompaction(s, pki.APIServerFlagsFor(endpoints, caFile, certFile, keyFile)), "\n") + "\n"
	kubeadm, err := pki.KubeadmExternalFor(endpoints, caFile, certFile, keyFile, pki.CompactionArgs(s)...)
	if err != nil {
		return err
	}
	var p pki.Paths
	pl := &plan{byDir: map[string]*pending{}}
	pl.configs = append(pl.configs,
		atomicdir.File{Name: filepath.Join(dir, filepath.Base(p.APIServerFlags())), Data: []byte(flags), Mode: configMode},
		atomicdir.File{Name: filepath.Join(dir, filepath.Base(p.KubeadmExternal())), Data: kubeadm, Mode: configMode})
	return commitHost(dir, pl)
}

// checkInitialCluster checks an initial-cluster read from the status,
// which more identities may write than the spec: each entry a spec node
// under a plain https URL (another member's URL may differ from its
// spec's: an edited peer URL keeps the member), and n under exactly its
// spec peer URLs. It becomes a line of etcd.env.
func checkInitialCluster(s *cluster.Spec, n cluster.Node, ic string) error {
	var own []string
	for _, e := range strings.Split(ic, ",") {
		name, raw, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("%q is not name=URL", e)
		}
		if _, ok := s.Node(name); !ok {
			return fmt.Errorf("%q is not a node in the spec", name)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return fmt.Errorf("%q is not an https URL with a host and a port only", raw)
		}
		if name == n.Name {
			if !slices.Contains(n.PeerURLs, raw) {
				return fmt.Errorf("it names %s under %s, not its spec peer URLs", name, raw)
			}
			own = append(own, raw)
		}
	}
	if len(own) == 0 {
		return fmt.Errorf("it does not name %s", n.Name)
	}
	return nil
}
