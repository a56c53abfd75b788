package carotate

import (
	"context"
	"fmt"

	"github.com/etcdpki/etcdpki/ca"
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
// does (3) and (4) only. A token key is never deleted: before (2) the old
// key takes its retired label (the backup's ca.key.uri names it), and
// after (2) the new key takes the spec's label; both are found by their
// public keys whatever their labels, so a crash between any two of these
// steps is finished by the next run.
func (cr *caRun) retire() error {
	old, next := cr.rot.Old, cr.rot.Next
	caDir := cr.paths.CADir()
	if !old.Cert.Equal(next.Cert) {
		// A token key is relabelled, never deleted: the backup names it
		// by its retired label.
		retired, err := ca.Retire(old)
		if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		backup, err := issue.BackupCA(cr.paths, retired)
		if err != nil {
			return fmt.Errorf("finish: back up the old CA: %w", err)
		}
		next = ca.InEffect(next)
		if err := issue.SwitchCA(cr.paths, next); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		keyNote := "key 0400"
		if retired.InToken() {
			keyNote = "its key stays in the token as " + retired.Token.Object
		}
		cr.step(pki.CAStageFinish, "").Serial(certx.Serial(next.Cert)).Done("finish: the old CA (serial %s) is in %s (%s); %s is the new CA (serial %s)", pki.ShortSerial(certx.Serial(old.Cert)), backup, keyNote, caDir, pki.ShortSerial(certx.Serial(next.Cert)))
	}
	// The new CA's token key takes the label the spec names (a re-run
	// after the switch finds it here, next loaded from PKI/etcd).
	if err := ca.Settle(ca.InEffect(next)); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	// A re-run after the switch no longer knows the old CA from the
	// rotation: it is in the version being dropped. DropRetiredCAs backs
	// up whatever key is there (the backup above is reused when it still
	// holds it) before it drops it, so that a retired CA key exists
	// somewhere at every instant.
	if err := issue.DropRetiredCAs(cr.paths); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	if err := cr.resignCRL(context.Background(), pki.CAStageFinish); err != nil {
		return err
	}
	if err := issue.RemoveNextCA(cr.paths); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	j := cr.journal()
	if j.Done[pki.CAStageFinish].IsZero() {
		j.Done[pki.CAStageFinish] = cr.r.Cfg.Now().UTC()
	}
	cr.rot.Old, cr.rot.Stage = next, ""
	if err := cr.save(); err != nil {
		return err
	}
	cr.step(pki.CAStageFinish, "").Done("finish: CA rotation done: every bundle trusts the new CA only and every leaf is from it")
	return nil
}
