package rotate

import (
	"fmt"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// retire makes the new CA the CA in effect, in an order a crash at any
// point leaves resumable: (1) the old CA goes to PKI/backup/ca-SERIAL/
// (written whole or not at all, key 0400, read back and compared before
// anything else happens; ca-SERIAL-2 and so on when the name is taken by
// anything else); (2) PKI/etcd switches to the
// new CA in one rename; (3) the version of PKI/etcd holding the old key is
// removed, so the old key is out of the active PKI, once a verified backup
// of it exists; (4) PKI/etcd-next is
// removed. A re-run after (2) finds PKI/etcd equal to PKI/etcd-next and
// does (3) and (4) only.
func (cr *caRun) retire() error {
	old, next := cr.rot.Old, cr.rot.Next
	caDir := cr.paths.CADir()
	if !old.Cert.Equal(next.Cert) {
		backup, _, err := issue.WriteBackup(cr.paths.Backups(), "ca-"+certx.Serial(old.Cert), []atomicdir.File{
			{Name: pki.CAFile, Data: old.CertPEM, Mode: atomicdir.CertMode},
			{Name: pki.CAKeyFile, Data: old.KeyPEM, Mode: atomicdir.CAKeyMode},
		}, true)
		if err != nil {
			return fmt.Errorf("finish: back up the old CA: %w", err)
		}
		if _, err := atomicdir.Update(cr.paths.CAStore(), []atomicdir.File{
			{Name: pki.CAFile, Data: next.CertPEM, Mode: atomicdir.CertMode},
			{Name: pki.CAKeyFile, Data: next.KeyPEM, Mode: atomicdir.CAKeyMode},
		}, checkCAFiles); err != nil {
			return fmt.Errorf("finish: switch %s to the new CA: %w", caDir, err)
		}
		cr.log("finish: the old CA (serial %s) is in %s (key 0400); %s is the new CA (serial %s)", pki.ShortSerial(certx.Serial(old.Cert)), backup, caDir, pki.ShortSerial(certx.Serial(next.Cert)))
	}
	// A re-run after the switch no longer knows the old CA from the
	// rotation: it is in the version being dropped. Back up whatever key
	// is there (the backup above is reused when it still holds it) so that
	// a retired CA key exists somewhere at every instant.
	if _, err := issue.BackupRetiredCAs(cr.paths.Backups(), caDir); err != nil {
		return fmt.Errorf("finish: %w", err)
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
