package pki

import (
	"path/filepath"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
)

// Paths is the on-disk layout of a PKI directory. It follows kubeadm's file
// names so that a node bundle drops into a host's /etc/kubernetes/pki:
//
//	PKI/etcd/ca.crt, ca.key                      the CA (the key stays here)
//	PKI/nodes/NODE/etcd/{ca,server,peer,healthcheck-client}.{crt,key}
//	PKI/nodes/NODE/etcd.conf.yml                 etcd --config-file
//	PKI/apiserver/etcd/ca.crt
//	PKI/apiserver/apiserver-etcd-client.{crt,key}
//	PKI/apiserver/etcd-flags, kubeadm-etcd-external.yaml
//	PKI/clients/NAME/etcd/ca.crt, PKI/clients/NAME/NAME.{crt,key}
//
// Every certificate directory is an atomic store: the names above are
// symlinks into a versioned directory, so a cert and its key switch
// together in one rename. A bundle's stores are named after its owner
// (the node or client), so that bundles copied into one host directory
// never share a store (see atomicdir.Store).
type Paths struct{ PKI string }

// The file names every store uses: a certificate is BASE.crt with its key
// BASE.key beside it (kubeadm's names); every bundle's CA store holds
// CAFile, and the CA's store CAFile and CAKeyFile.
const (
	CertExt   = ".crt"
	KeyExt    = ".key"
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// CADir holds the CA certificate and key.
func (p Paths) CADir() string { return filepath.Join(p.PKI, "etcd") }

// CAStoreName names the store of the CA (and of the next CA): "ca" is
// reserved, so no node or client store is called that.
const CAStoreName = "ca"

// CAStore is the atomic store of the CA certificate and key.
func (p Paths) CAStore() atomicdir.Store {
	return atomicdir.Store{Dir: p.CADir(), Name: CAStoreName}
}

// CACert is the CA certificate.
func (p Paths) CACert() string { return filepath.Join(p.CADir(), CAFile) }

// CAKey is the CA private key; it never leaves the PKI directory.
func (p Paths) CAKey() string { return filepath.Join(p.CADir(), CAKeyFile) }

// NodeDir is a node's bundle: the contents of its /etc/kubernetes/pki.
func (p Paths) NodeDir(node string) string { return filepath.Join(p.PKI, "nodes", node) }

// NodeCertDir holds a node's ca.crt and its server, peer and healthcheck pairs.
func (p Paths) NodeCertDir(node string) string { return filepath.Join(p.NodeDir(node), "etcd") }

// NodeConfig is the node's etcd.conf.yml.
func (p Paths) NodeConfig(node string) string { return filepath.Join(p.NodeDir(node), "etcd.conf.yml") }

// APIServerDir is the kube-apiserver's bundle.
func (p Paths) APIServerDir() string { return filepath.Join(p.PKI, "apiserver") }

// APIServerFlags is the file holding the kube-apiserver --etcd-* flags.
func (p Paths) APIServerFlags() string { return filepath.Join(p.APIServerDir(), "etcd-flags") }

// KubeadmExternal is the kubeadm ClusterConfiguration etcd.external block.
func (p Paths) KubeadmExternal() string {
	return filepath.Join(p.APIServerDir(), "kubeadm-etcd-external.yaml")
}

// ClientBundle is a client's bundle directory: the apiserver's own, or an
// extra client's.
func (p Paths) ClientBundle(name string) string {
	if name == cluster.ClientAPIServer {
		return p.APIServerDir()
	}
	return p.ClientDir(name)
}

// ClientDir is an extra client's bundle.
func (p Paths) ClientDir(name string) string { return filepath.Join(p.PKI, "clients", name) }

// InitialCluster records the members the cluster was bootstrapped with,
// which decides each node's initial-cluster-state.
func (p Paths) InitialCluster() string { return filepath.Join(p.PKI, "initial-cluster.json") }

// Spec is where init keeps the spec of a PKI made from flags alone.
func (p Paths) Spec() string { return filepath.Join(p.PKI, SpecFile) }

// SpecFile is the spec's name inside the PKI directory.
const SpecFile = "etcdpki.yaml"

// Backups is where rotation keeps the pairs it replaced, by timestamp.
func (p Paths) Backups() string { return filepath.Join(p.PKI, "backup") }

// JournalFile is the name of the live operations' journal (rotate's
// State) inside the PKI directory.
const JournalFile = "rotate-state.json"

// Journal is the journal the live operations resume from.
func (p Paths) Journal() string { return filepath.Join(p.PKI, JournalFile) }

// CheckOwnerDir is the path-building layer's own check on a node's,
// client's or issued certificate's directory, made from a name the
// operator typed: the name follows the spec's name rule, and dir, with
// the symbolic links of its existing part resolved, stays inside the PKI
// directory. Commands check names first; this is the defence in depth
// under every write and removal that a name leads to, and it catches a
// link inside the PKI directory that points out of it.
func (p Paths) CheckOwnerDir(name, dir string) error {
	if err := cluster.CheckName(name); err != nil {
		return input.Errorf("%v", err)
	}
	in, real, err := pathx.Inside(p.PKI, dir)
	if err != nil {
		return ReadError(dir, err)
	}
	if !in {
		return input.Errorf("%s leads to %s, outside the PKI directory %s (a symbolic link?); etcdpki writes and removes only inside it: move the link away", dir, real, p.PKI)
	}
	return nil
}
