package carotate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestRetireNeverLosesTheOldCAKey occupies the old CA's backup name with
// what a hostile or careless operator leaves there, then retires the CA:
// the foreign content is left as it was, the old CA lands, verified,
// under a fresh name, and the old key is in exactly one backup.
func TestRetireNeverLosesTheOldCAKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		occupy func(t *testing.T, path string)
	}{
		{"a regular file", func(t *testing.T, path string) { mustWrite(t, path, "not a backup") }},
		{"empty ca.crt and ca.key", func(t *testing.T, path string) {
			mustMkdir(t, path)
			mustWrite(t, filepath.Join(path, "ca.crt"), "")
			mustWrite(t, filepath.Join(path, "ca.key"), "")
		}},
		{"another CA's pair", func(t *testing.T, path string) {
			mustMkdir(t, path)
			mustWrite(t, filepath.Join(path, "ca.crt"), "-----BEGIN CERTIFICATE-----\n")
			mustWrite(t, filepath.Join(path, "ca.key"), "someone else's key")
		}},
		{"a symbolic link to a directory outside", func(t *testing.T, path string) {
			out := t.TempDir()
			if err := os.Symlink(out, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO", func(t *testing.T, path string) {
			mustMkdir(t, filepath.Dir(path))
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := crashSpec(t)
			cr := newCARun(t, s)
			if _, err := cr.prepare(); err != nil {
				t.Fatal(err)
			}
			old, next := cr.rot.Old, cr.rot.Next
			p := pki.Paths{PKI: s.PKIDir}
			taken := filepath.Join(p.Backups(), "ca-"+certx.Serial(old.Cert))
			mustMkdir(t, p.Backups())
			tc.occupy(t, taken)
			before := snapshot(t, taken)
			if err := cr.retire(); err != nil {
				t.Fatalf("retire: %v", err)
			}
			checkRetired(t, s, old.KeyPEM, next.CertPEM, "the end")
			if after := snapshot(t, taken); after != before {
				t.Errorf("retire changed what was at %s:\n%s\nwant\n%s", taken, after, before)
			}
			got := filepath.Join(p.Backups(), "ca-"+certx.Serial(old.Cert)+"-2")
			if err := issue.VerifyBackup(got, []atomicdir.File{
				{Name: "ca.crt", Data: old.CertPEM, Mode: atomicdir.CertMode},
				{Name: "ca.key", Data: old.KeyPEM, Mode: atomicdir.CAKeyMode},
			}); err != nil {
				t.Errorf("the old CA is not backed up under the fresh name: %v", err)
			}
		})
	}
}

// TestRetireBacksUpTheKeyAgainAfterACrash stops the retirement right
// after PKI/etcd switched, removes the backup it had written, and runs it
// again: the re-run no longer knows the old CA from the rotation, yet the
// old key (still in the version being dropped) is backed up, verified,
// before that version goes.
func TestRetireBacksUpTheKeyAgainAfterACrash(t *testing.T) {
	s := crashSpec(t)
	cr := newCARun(t, s)
	if _, err := cr.prepare(); err != nil {
		t.Fatal(err)
	}
	old, next := cr.rot.Old, cr.rot.Next
	p := pki.Paths{PKI: s.PKIDir}
	errStop := errors.New("stopped")
	restore := atomicdir.SetHook(func(op, path string) error {
		if op == "remove" && strings.HasPrefix(filepath.Base(path), "..") && filepath.Dir(path) == p.CAStore().Path() {
			return errStop // the old version's removal: PKI/etcd has switched
		}
		return nil
	})
	err := cr.retire()
	restore()
	if !errors.Is(err, errStop) {
		t.Fatalf("retire: %v, want it stopped before the old version went", err)
	}
	if in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir}); err != nil || !in.Cert.Equal(next.Cert) {
		t.Fatalf("PKI/etcd has not switched to the new CA: %v", err)
	}
	if err := os.RemoveAll(p.Backups()); err != nil {
		t.Fatal(err)
	}
	again := newCARun(t, s)
	if err := again.retire(); err != nil {
		t.Fatalf("retire again: %v", err)
	}
	checkRetired(t, s, old.KeyPEM, next.CertPEM, "the re-run")
}

// TestRetireRefusesABackupRootThatIsAFile puts a regular file at
// PKI/backup: the retirement stops with an input error naming it, and the
// old CA stays in effect with its key where it was.
func TestRetireRefusesABackupRootThatIsAFile(t *testing.T) {
	s := crashSpec(t)
	cr := newCARun(t, s)
	if _, err := cr.prepare(); err != nil {
		t.Fatal(err)
	}
	old := cr.rot.Old
	p := pki.Paths{PKI: s.PKIDir}
	mustWrite(t, p.Backups(), "not a directory")
	err := cr.retire()
	var ic input.Coder
	if err == nil || !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode || !strings.Contains(err.Error(), p.Backups()+" is a regular file, not a directory") {
		t.Fatalf("retire: %v, want an input error naming %s", err, p.Backups())
	}
	if in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir}); err != nil || !bytes.Equal(in.KeyPEM, old.KeyPEM) {
		t.Fatalf("the old CA is no longer in effect: %v", err)
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes path without following links or opening FIFOs.
func snapshot(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + info.Mode().String())
		if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}
