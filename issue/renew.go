package issue

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
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
}

// Renewed is one certificate that Renew replaced.
type Renewed struct {
	Target    Target
	OldSerial string
	NewSerial string
	NotAfter  time.Time
	// Backup is the directory holding the previous pair.
	Backup string
}

// Renew re-issues the given targets from the spec (picking up SAN
// changes) and switches each store's pairs atomically, keeping the old
// pairs in a timestamped backup directory. Targets sharing a directory
// switch together.
func Renew(ctx context.Context, s *cluster.Spec, targets []Target, o RenewOptions) ([]Renewed, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	now := o.now()
	authority, err := LoadCA(s.PKIDir)
	if err != nil {
		return nil, err
	}
	backup := o.BackupDir
	if backup == "" {
		backup = filepath.Join(Paths{PKI: s.PKIDir}.Backups(), now.UTC().Format("20060102T150405Z"))
	}
	pl := &plan{byDir: map[string]*pending{}}
	var out []Renewed
	type old struct{ cert, key []byte }
	olds := map[string]old{}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := Renewed{Target: t}
		// An unreadable or half pair is replaced, and there is nothing
		// to back up; only --reuse-key needs the old key.
		certPEM, keyPEM, readErr := readPair(t)
		if readErr != nil && o.ReuseKey {
			return nil, inputError("%s: cannot reuse key: %v", t.KeyPath(), readErr)
		}
		var reuse []byte
		if readErr == nil && certPEM != nil {
			if c, err := ca.ParseCert(certPEM); err == nil {
				r.OldSerial = Serial(c)
			}
			olds[t.ID] = old{certPEM, keyPEM}
			if o.ReuseKey {
				if err := ca.CheckPair(certPEM, keyPEM); err != nil {
					return nil, inputError("%s: cannot reuse key: %v", t.KeyPath(), err)
				}
				reuse = keyPEM
			}
		}
		newCert, newKey, err := signTarget(authority, s, t, reuse, now)
		if err != nil {
			return nil, err
		}
		c, _ := ca.ParseCert(newCert)
		r.NewSerial = Serial(c)
		r.NotAfter = c.NotAfter
		if _, ok := olds[t.ID]; ok {
			r.Backup = filepath.Join(backup, rel(s.PKIDir, t.Dir))
		}
		pl.add(t.Dir, atomicdir.File{Name: t.CertName, Data: newCert, Mode: atomicdir.CertMode})
		pl.add(t.Dir, atomicdir.File{Name: t.KeyName, Data: newKey, Mode: atomicdir.KeyMode})
		pl.add(t.CADir, atomicdir.File{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode})
		out = append(out, r)
	}
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return nil, err
	}
	// Back up first: once the backup is durable, the swap may happen.
	for _, r := range out {
		o, ok := olds[r.Target.ID]
		if !ok {
			continue
		}
		if _, err := atomicdir.WriteFile(filepath.Join(r.Backup, r.Target.CertName), o.cert, atomicdir.CertMode); err != nil {
			return nil, fmt.Errorf("back up %s: %w", r.Target.ID, err)
		}
		if _, err := atomicdir.WriteFile(filepath.Join(r.Backup, r.Target.KeyName), o.key, atomicdir.KeyMode); err != nil {
			return nil, fmt.Errorf("back up %s: %w", r.Target.ID, err)
		}
	}
	var b atomicdir.Batch
	for _, st := range pl.stores {
		if _, err := b.Update(st.dir, st.files, checkPairs); err != nil {
			b.Abort()
			return nil, fmt.Errorf("renew in %s: %w", st.dir, err)
		}
	}
	if err := b.Commit(); err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	for _, r := range out {
		o.printf("[renew] %s: serial %s -> %s, valid until %s", r.Target.ID, short(r.OldSerial), short(r.NewSerial), r.NotAfter.Format(time.DateOnly))
	}
	return out, nil
}

// Serial renders a certificate serial as lower-case hex, as openssl does.
func Serial(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

func short(serial string) string {
	if serial == "" {
		return "(none)"
	}
	if len(serial) > 12 {
		return serial[:12]
	}
	return serial
}

func rel(base, path string) string {
	r, err := filepath.Rel(base, path)
	if err != nil {
		return filepath.Base(path)
	}
	return r
}
