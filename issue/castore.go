package issue

import (
	"fmt"
	"path/filepath"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// The CA rotation's writes (etcdpki ca rotate runs the stages; these are
// the files each stage changes). Every one is an atomic switch, so a
// crash between any two of them leaves a state package pki reads back as
// a stage and the next run resumes from. The caller holds the PKI
// directory's lock.

// WriteNextCA writes next (its certificate, and its key or the URI of
// its token key) into PKI/etcd-next, the CA rotation's prepare stage: one
// atomic store of its own, so a crash leaves it whole or absent and the
// CA in effect is untouched. A certificate and key that do not belong
// together are refused before anything is written.
func WriteNextCA(p pki.Paths, next *ca.CA) error {
	files := append([]atomicdir.File{{Name: pki.CAFile, Data: next.CertPEM, Mode: atomicdir.CertMode}}, next.StoreFiles()...)
	if _, err := atomicdir.Update(p.NextCAStore(), files, checkCAFiles); err != nil {
		return fmt.Errorf("write the next CA into %s: %w", p.NextCADir(), err)
	}
	return nil
}

// WriteCABundles puts data (the CA bundle of a rotation's stage: old and
// new CA at trust-both, the new one alone at finish) into the ca.crt of
// every bundle of inv, every node's, the apiserver's and each client's,
// in one batch: either every bundle switches or none does. It returns how
// many bundles changed; a re-run after a crash changes only the rest.
func WriteCABundles(inv *pki.Inventory, data []byte) (changed int, err error) {
	var b atomicdir.Batch
	var results []*atomicdir.Result
	for _, bu := range inv.Bundles {
		st := bu.CAStore()
		res, err := b.Update(st, []atomicdir.File{{Name: pki.CAFile, Data: data, Mode: atomicdir.CertMode}}, nil)
		if err != nil {
			b.Abort()
			return 0, fmt.Errorf("write %s: %w", filepath.Join(st.Dir, pki.CAFile), err)
		}
		results = append(results, res)
	}
	if err := b.Commit(); err != nil {
		return 0, err
	}
	for _, r := range results {
		if r.Changed {
			changed++
		}
	}
	return changed, nil
}

// BackupCA copies retired (the old CA, its key relabelled when it lives
// in a token) into PKI/backup/ca-SERIAL through the one backup writer:
// written whole, read back and compared before it returns, an identical
// earlier backup reused, so the CA store may drop the old key once this
// returns. It returns the backup's directory.
func BackupCA(p pki.Paths, retired *ca.CA) (string, error) {
	files := append([]atomicdir.File{{Name: pki.CAFile, Data: retired.CertPEM, Mode: atomicdir.CertMode}}, retired.StoreFiles()...)
	dir, _, err := WriteBackup(p.Backups(), "ca-"+certx.Serial(retired.Cert), files, true)
	return dir, err
}

// SwitchCA makes next the CA in effect: PKI/etcd switches to its
// certificate and key (or key URI) in one rename. The version holding
// the old key stays until DropRetiredCAs, so call BackupCA first.
func SwitchCA(p pki.Paths, next *ca.CA) error {
	files := append([]atomicdir.File{{Name: pki.CAFile, Data: next.CertPEM, Mode: atomicdir.CertMode}}, next.StoreFiles()...)
	if _, err := atomicdir.Update(p.CAStore(), files, checkCAFiles); err != nil {
		return fmt.Errorf("switch %s to the new CA: %w", p.CADir(), err)
	}
	return nil
}

// DropRetiredCAs takes every retired CA key out of PKI/etcd: it backs up
// the pair held by each version but the one in effect (BackupRetiredCAs:
// whatever a crash left, a retired key then exists in a verified backup
// first), then removes those versions. It is here, not in the caller, so
// that no key is dropped without its backup.
func DropRetiredCAs(p pki.Paths) error {
	if _, err := BackupRetiredCAs(p.Backups(), p.CADir()); err != nil {
		return err
	}
	if err := atomicdir.DropOld(p.CADir()); err != nil {
		return fmt.Errorf("remove the old CA key from %s: %w", p.CADir(), err)
	}
	return nil
}

// RemoveNextCA removes PKI/etcd-next once its CA is the CA in effect: the
// rotation's last write, after which no rotation is in progress.
func RemoveNextCA(p pki.Paths) error {
	if err := atomicdir.RemoveAll(p.NextCADir()); err != nil {
		return fmt.Errorf("remove %s: %w", p.NextCADir(), err)
	}
	return nil
}

// checkCAFiles vetoes a CA store whose certificate and key do not belong
// together (for a token key: whose token holds no key for it).
func checkCAFiles(files map[string][]byte) error {
	_, err := ca.ParseStore(files[pki.CAFile], files[ca.KeyFile], files[ca.KeyURIFile], "CA store", "CA store: CA key", "CA store: CA key URI")
	return err
}
