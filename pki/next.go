package pki

import (
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// NextCADir is where the CA being rolled out by etcdpki ca rotate waits,
// stored like the CA (an atomic store holding ca.crt and ca.key, the key
// 0400). It exists only while a CA rotation is in progress.
func (p Paths) NextCADir() string { return filepath.Join(p.PKI, "etcd-next") }

// NextCAStore is the next CA's atomic store.
func (p Paths) NextCAStore() atomicdir.Store {
	return atomicdir.Store{Dir: p.NextCADir(), Name: CAStoreName}
}

// NextCACert is the next CA's certificate.
func (p Paths) NextCACert() string { return filepath.Join(p.NextCADir(), CAFile) }
