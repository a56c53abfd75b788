package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// retire makes the new CA the CA in effect, in an order a crash at any
// point leaves resumable: (1) the old CA goes to PKI/backup/ca-SERIAL/
// (written whole or not at all, key 0400); (2) PKI/etcd switches to the
// new CA in one rename; (3) the version of PKI/etcd holding the old key is
// removed, so the old key is out of the active PKI; (4) PKI/etcd-next is
// removed. A re-run after (2) finds PKI/etcd equal to PKI/etcd-next and
// does (3) and (4) only.
func (cr *caRun) retire() error {
	old, next := cr.rot.Old, cr.rot.Next
	caDir := cr.paths.CADir()
	if !old.Cert.Equal(next.Cert) {
		backup := filepath.Join(cr.paths.Backups(), "ca-"+certx.Serial(old.Cert))
		if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
			if _, err := atomicdir.NewDir(backup, []atomicdir.File{
				{Name: pki.CAFile, Data: old.CertPEM, Mode: atomicdir.CertMode},
				{Name: pki.CAKeyFile, Data: old.KeyPEM, Mode: atomicdir.CAKeyMode},
			}); err != nil {
				return fmt.Errorf("finish: back up the old CA: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		if _, err := atomicdir.Update(caDir, []atomicdir.File{
			{Name: pki.CAFile, Data: next.CertPEM, Mode: atomicdir.CertMode},
			{Name: pki.CAKeyFile, Data: next.KeyPEM, Mode: atomicdir.CAKeyMode},
		}, checkCAFiles); err != nil {
			return fmt.Errorf("finish: switch %s to the new CA: %w", caDir, err)
		}
		cr.log("finish: the old CA (serial %s) is in %s (key 0400); %s is the new CA (serial %s)", pki.ShortSerial(certx.Serial(old.Cert)), backup, caDir, pki.ShortSerial(certx.Serial(next.Cert)))
	}
	if err := atomicdir.DropOld(caDir); err != nil {
		return fmt.Errorf("finish: remove the old CA key from %s: %w", caDir, err)
	}
	if err := atomicdir.RemoveAll(cr.paths.NextCADir()); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	j := cr.journal()
	if j.Done[pki.CAStageFinish].IsZero() {
		j.Done[pki.CAStageFinish] = cr.r.o.Now().UTC()
	}
	cr.rot.Old, cr.rot.Stage = next, ""
	if err := cr.save(); err != nil {
		return err
	}
	cr.log("finish: CA rotation done: every bundle trusts the new CA only and every leaf is from it")
	return nil
}
