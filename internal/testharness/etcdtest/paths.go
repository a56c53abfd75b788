package etcdtest

import (
	"path/filepath"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/pki"
)

// APIServerFiles are the kube-apiserver's --etcd-cafile, --etcd-certfile
// and --etcd-keyfile in the PKI directory at p, by the catalogue's names.
func APIServerFiles(p pki.Paths) (caFile, crt, key string) {
	dir, base := p.APIServerDir(), ca.KindAPIServer.BaseName
	return filepath.Join(dir, "etcd", pki.CAFile), filepath.Join(dir, base+pki.CertExt), filepath.Join(dir, base+pki.KeyExt)
}

// NodePair is a node's certificate and key of the given base name
// ("server", "peer", "healthcheck-client") in the PKI directory at p.
func NodePair(p pki.Paths, node, base string) (crt, key string) {
	d := p.NodeCertDir(node)
	return filepath.Join(d, base+pki.CertExt), filepath.Join(d, base+pki.KeyExt)
}

// APIServerCA is the kube-apiserver's --etcd-cafile in the PKI directory
// at p.
func APIServerCA(p pki.Paths) string {
	caFile, _, _ := APIServerFiles(p)
	return caFile
}
