package issue

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// RenewOptions control Renew.
type RenewOptions struct {
	Options
	// ReuseKey signs the existing key again instead of generating a new
	// one (the default is a new key: renewal is also key rotation).
	ReuseKey bool
	// BackupDir, when set, receives a copy of every replaced pair under
	// its path relative to the PKI directory. "" means PKI/backup/<time>.
	BackupDir string
	// NewCA, when set, replaces the PKI directory's CA: the targets are
	// signed by it, it is written with them (the old CA's files go into
	// the backup too), and every bundle renewed gets it as ca.crt. Only
	// a recovery from an expired CA sets it (see Reissue); a CA that
	// still works is rotated in stages instead.
	NewCA *ca.CA
	// Authority, when set, signs instead of the PKI directory's CA, and
	// BundleCA is then the ca.crt written beside each pair: the CA
	// rotation's reissue stage signs from the next CA while bundles trust
	// both. Without Authority, Renew refuses to run during a CA rotation.
	Authority *ca.CA
	BundleCA  []byte
}

// Renewed is one certificate that Renew replaced.
type Renewed struct {
	Target    pki.Target
	OldSerial string
	NewSerial string
	NotAfter  time.Time
	// Backup is the directory holding the previous pair.
	Backup string
}

// Renew re-issues the given targets from the spec (picking up SAN
// changes) and switches each store's pairs atomically, keeping the old
// pairs in a backup directory of their own. Targets sharing a directory
// switch together.
//
// Like Init it plans before taking the PKI directory's lock (bad input
// changes nothing) and again under it, reusing what it signed; a failure
// while writing takes back the switches and the backup.
func Renew(ctx context.Context, inv *pki.Inventory, targets []pki.Target, o RenewOptions) ([]Renewed, error) {
	s := inv.Spec
	if len(targets) == 0 {
		return nil, nil
	}
	pre, err := planRenew(ctx, inv, targets, o, nil)
	if err != nil {
		return nil, err
	}
	held, err := o.lock(s.PKIDir)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	rp, err := planRenew(ctx, inv, targets, o, pre)
	if err != nil {
		return nil, err
	}
	root, base := o.backupName(inv.Paths)
	// Back up first: once the backup is durable and verified, the swap
	// may happen. The backup appears whole or not at all.
	var saved []atomicdir.File
	out := rp.out
	for _, r := range out {
		old, ok := rp.olds[r.Target.ID]
		if !ok {
			continue
		}
		dir := rel(s.PKIDir, r.Target.Dir)
		saved = append(saved,
			atomicdir.File{Name: filepath.Join(dir, r.Target.CertName), Data: old.cert, Mode: atomicdir.CertMode},
			atomicdir.File{Name: filepath.Join(dir, r.Target.KeyName), Data: old.key, Mode: atomicdir.KeyMode})
	}
	if rp.oldCA != nil {
		dir := rel(s.PKIDir, inv.Paths.CADir())
		saved = append(saved,
			atomicdir.File{Name: filepath.Join(dir, pki.CAFile), Data: rp.oldCA.cert, Mode: atomicdir.CertMode})
		for _, f := range rp.oldCA.keyFiles {
			f.Name = filepath.Join(dir, f.Name)
			saved = append(saved, f)
		}
	}
	undoBackup := func() {}
	if len(saved) > 0 {
		var backup string
		if backup, undoBackup, err = WriteBackup(root, base, saved, false); err != nil {
			return nil, fmt.Errorf("back up: %w", err)
		}
		for i := range out {
			if _, ok := rp.olds[out[i].Target.ID]; ok {
				out[i].Backup = filepath.Join(backup, rel(s.PKIDir, out[i].Target.Dir))
			}
		}
	}
	// Callers say "renew:" (rotate, revoke): the message says what
	// failed under it ("write DIR: ..."), not "renew" again.
	var b atomicdir.Batch
	if _, err = rp.pl.write(&b); err != nil {
		b.Abort()
		// Nothing was switched: the backup of this run backs up nothing.
		undoBackup()
		return nil, err
	}
	for _, r := range out {
		line := fmt.Sprintf("[renew] %s: serial %s -> %s, valid until %s", r.Target.ID, pki.ShortSerial(r.OldSerial), pki.ShortSerial(r.NewSerial), r.NotAfter.Format(time.DateOnly))
		// A progress reporter (runner.Logger) takes the line as an
		// event that names the certificate and its serial.
		if rr, ok := o.Out.(renewReporter); ok {
			rr.ReportRenewed(r.Target.ID, r.NewSerial, line)
		} else {
			o.printf("%s", line)
		}
	}
	if o.NewCA != nil {
		// The new CA's token key takes the label the spec names; a run
		// killed before this leaves it to the next CreateNext.
		if err := ca.Settle(ca.InEffect(o.NewCA)); err != nil {
			return out, err
		}
	}
	return out, o.tighten(inv)
}

// renewReporter is an Options.Out that takes each renewed
// certificate's line as a structured report.
type renewReporter interface {
	ReportRenewed(id, serial, line string)
}

// backupName is where this run's backup goes: BackupDir, or
// PKI/backup/<time> (WriteBackup adds a suffix when a run in the same
// second has taken the name, so a backup is never written over).
func (o RenewOptions) backupName(p pki.Paths) (root, base string) {
	if o.BackupDir != "" {
		return filepath.Dir(o.BackupDir), filepath.Base(o.BackupDir)
	}
	return p.Backups(), o.now().UTC().Format("20060102T150405Z")
}

type oldPair struct{ cert, key []byte }

// oldCAStore is the CA a recovery replaces, for the backup: its
// certificate and its key file, or the ca.key.uri naming its token key by
// its retired label.
type oldCAStore struct {
	cert     []byte
	keyFiles []atomicdir.File
}

// renewPlan is what Renew writes, worked out without writing.
type renewPlan struct {
	authority *ca.CA
	pl        *plan
	out       []Renewed
	olds      map[string]oldPair
	fresh     map[string]signed
	// oldCA is the CA that NewCA replaces, for the backup.
	oldCA *oldCAStore
}

// planRenew reads the pairs to replace and signs their successors. pre,
// when set, is the plan made before the lock: its pairs are reused when
// the CA and, with --reuse-key, the old key are still the same.
func planRenew(ctx context.Context, inv *pki.Inventory, targets []pki.Target, o RenewOptions, pre *renewPlan) (*renewPlan, error) {
	s, p := inv.Spec, inv.Paths
	now := o.now()
	authority, bundleCA, err := o.signer(p)
	if err != nil {
		return nil, err
	}
	rp := &renewPlan{authority: authority, pl: &plan{byDir: map[string]*pending{}}, olds: map[string]oldPair{}, fresh: map[string]signed{}}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := rp.addTarget(s, t, o, pre, bundleCA, now); err != nil {
			return nil, err
		}
	}
	if o.NewCA != nil {
		// Added last, so the CA's store switches after the bundles that
		// trust it: a crash in between leaves an expired CA with some
		// leaves it did not sign, which the next recovery replaces again.
		if err := rp.replaceCA(p, o.NewCA); err != nil {
			return nil, err
		}
	}
	if err := checkWritable(s.PKIDir, rp.pl); err != nil {
		return nil, err
	}
	if len(rp.olds) > 0 || rp.oldCA != nil {
		root, _ := o.backupName(inv.Paths)
		if err := CheckBackupRoot(root); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

// signer decides which CA signs the new pairs (Authority, else NewCA,
// else the PKI's own, refused during a CA rotation) and which CA
// certificate their bundles carry (BundleCA, else the signer's).
func (o RenewOptions) signer(p pki.Paths) (*ca.CA, []byte, error) {
	authority, bundleCA := o.NewCA, o.BundleCA
	if o.Authority != nil {
		authority = o.Authority
	}
	if authority == nil {
		if err := refuseDuringCARotation(p, "renew"); err != nil {
			return nil, nil, err
		}
		var err error
		if authority, err = pki.LoadCA(p); err != nil {
			return nil, nil, err
		}
	}
	if bundleCA == nil {
		bundleCA = authority.CertPEM
	}
	return authority, bundleCA, nil
}

// addTarget reads t's pair (to back up, and with --reuse-key to sign its
// key again) and plans its successor: the pair pre signed when it still
// fits, else a new one.
func (rp *renewPlan) addTarget(s *cluster.Spec, t pki.Target, o RenewOptions, pre *renewPlan, bundleCA []byte, now time.Time) error {
	authority := rp.authority
	r := Renewed{Target: t}
	// An unreadable or half pair is replaced, and there is nothing
	// to back up; only --reuse-key needs the old key.
	certPEM, keyPEM, readErr := pki.ReadTargetPair(t)
	if readErr != nil && o.ReuseKey {
		return input.Errorf("%s: cannot reuse key: %v", t.KeyPath(), readErr)
	}
	var reuse []byte
	if readErr == nil && certPEM != nil {
		if c, err := ca.ParseCert(certPEM); err == nil {
			r.OldSerial = certx.Serial(c)
		}
		rp.olds[t.ID] = oldPair{certPEM, keyPEM}
		if o.ReuseKey {
			if err := checkReusable(t, authority, certPEM, keyPEM); err != nil {
				return err
			}
			reuse = keyPEM
		}
	}
	var newCert, newKey []byte
	var err error
	if f, ok := pre.freshFor(t.ID, authority, reuse); ok {
		newCert, newKey = f.cert, f.key
	} else if newCert, newKey, err = signTarget(authority, s, t, reuse, now); err != nil {
		return err
	}
	rp.fresh[t.ID] = signed{newCert, newKey}
	c, _ := ca.ParseCert(newCert)
	r.NewSerial = certx.Serial(c)
	r.NotAfter = c.NotAfter
	rp.pl.add(t.Store(), atomicdir.File{Name: t.CertName, Data: newCert, Mode: atomicdir.CertMode})
	rp.pl.add(t.Store(), atomicdir.File{Name: t.KeyName, Data: newKey, Mode: atomicdir.KeyMode})
	rp.pl.add(t.CAStore(), atomicdir.File{Name: pki.CAFile, Data: bundleCA, Mode: atomicdir.CertMode})
	rp.out = append(rp.out, r)
	return nil
}

// replaceCA plans the switch of the PKI's CA to newCA, and keeps the CA
// it replaces for the backup.
func (rp *renewPlan) replaceCA(p pki.Paths, newCA *ca.CA) error {
	if oldCert, oldKey, err := pki.ReadPair(p.CADir(), pki.CAFile, pki.CAKeyFile); err == nil && oldCert != nil {
		rp.oldCA = &oldCAStore{oldCert, []atomicdir.File{{Name: pki.CAKeyFile, Data: oldKey, Mode: atomicdir.CAKeyMode}}}
	} else if oldCert, uri, err := pki.ReadPair(p.CADir(), pki.CAFile, ca.KeyURIFile); err == nil && uri != nil {
		// A token key is never deleted: it takes its retired label
		// now (until the switch it is found by its public key) and
		// the backup names it so.
		old, err := pki.LoadCA(p)
		if err != nil {
			return err
		}
		retired, err := ca.Retire(old)
		if err != nil {
			return err
		}
		rp.oldCA = &oldCAStore{oldCert, retired.StoreFiles()}
	}
	rp.pl.add(p.CAStore(), atomicdir.File{Name: pki.CAFile, Data: newCA.CertPEM, Mode: atomicdir.CertMode})
	for _, f := range ca.InEffect(newCA).StoreFiles() {
		rp.pl.add(p.CAStore(), f)
	}
	return nil
}

// freshFor returns the pair the earlier plan signed for id, if the CA is
// the same and, when the key is reused, so is the key.
func (rp *renewPlan) freshFor(id string, authority *ca.CA, reuse []byte) (signed, bool) {
	if rp == nil || !rp.authority.Cert.Equal(authority.Cert) {
		return signed{}, false
	}
	if reuse != nil && !bytes.Equal(rp.olds[id].key, reuse) {
		return signed{}, false
	}
	f, ok := rp.fresh[id]
	return f, ok
}

// checkReusable refuses to sign a key again that does not match its
// certificate, or that is the CA's own key: certifying the CA key as a
// member's would hand whoever holds that bundle the power to sign.
func checkReusable(t pki.Target, authority *ca.CA, certPEM, keyPEM []byte) error {
	if key, err := certx.ParseKey(keyPEM); err == nil && certx.KeyMatches(authority.Cert, key.Public()) {
		return input.Errorf("%s: cannot reuse key: %w", t.KeyPath(), pki.ErrCAKey)
	}
	if err := ca.CheckPair(certPEM, keyPEM); err != nil {
		return input.Errorf("%s: cannot reuse key: %v", t.KeyPath(), err)
	}
	return nil
}

func rel(base, path string) string {
	r, err := filepath.Rel(base, path)
	if err != nil {
		return filepath.Base(path)
	}
	return r
}
