package issue

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// maxBackupNames bounds the search for a free backup name: base, base-2,
// ... base-N. Far more than a second's worth of runs under one lock; a
// directory that full is a problem to report, not to loop over.
const maxBackupNames = 1000

// CheckBackupRoot refuses a backup root that is not a directory of its
// own: a regular file (every name under it fails with ENOTDIR), a
// symbolic link (the CA key would leave the PKI directory through it) or
// anything else. A missing root is fine: the first backup creates it.
func CheckBackupRoot(root string) error {
	info, err := os.Lstat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return pki.ReadError(root, err)
	case info.Mode()&fs.ModeSymlink != 0:
		return input.Errorf("%s is a symbolic link; etcdpki keeps its backups (old keys included) in a plain directory there: move it away", root)
	case !info.IsDir():
		return input.Errorf("%s is %s, not a directory; etcdpki keeps its backups there: move it away", root, regular.Describe(info.Mode()))
	}
	return nil
}

// WriteBackup is the one writer of backups. It writes files into a new
// directory under root, named base or, when that name is taken by
// anything at all, base-2, base-3 and so on: a backup never lands in,
// or is mistaken for, a directory someone else filled. The directory
// appears whole or not at all (atomicdir.NewDir), and it is read back and
// compared byte for byte (and mode for mode) before WriteBackup returns,
// so a caller removes the source only once a verified copy exists.
//
// With reuse, an existing directory holding exactly these files is taken
// as this backup (a re-run after a crash backs up the same CA again);
// any other content is skipped over. undo removes a directory this call
// created, for a run that then fails before its switch.
func WriteBackup(root, base string, files []atomicdir.File, reuse bool) (dir string, undo func(), err error) {
	if err := CheckBackupRoot(root); err != nil {
		return "", nil, err
	}
	for i := 1; i <= maxBackupNames; i++ {
		dir = filepath.Join(root, base)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		_, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			undo, err := atomicdir.NewDir(dir, files)
			if err != nil {
				return "", nil, fmt.Errorf("back up into %s: %w", dir, err)
			}
			if err := VerifyBackup(dir, files); err != nil {
				undo()
				return "", nil, err
			}
			return dir, undo, nil
		case err != nil:
			return "", nil, fmt.Errorf("back up into %s: %w", dir, err)
		case reuse && VerifyBackup(dir, files) == nil:
			return dir, func() {}, nil
		}
	}
	return "", nil, fmt.Errorf("back up: %s through %s-%d are all taken; clean up %s", filepath.Join(root, base), filepath.Join(root, base), maxBackupNames, root)
}

// VerifyBackup reports whether dir holds exactly files: each a regular
// file (not a link to one) with the same bytes and mode, and nothing
// else.
func VerifyBackup(dir string, files []atomicdir.File) error {
	want := map[string]atomicdir.File{}
	for _, f := range files {
		want[filepath.Clean(f.Name)] = f
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, _ := filepath.Rel(dir, p)
		f, ok := want[name]
		if !ok {
			return fmt.Errorf("%s is not part of the backup", p)
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != f.Mode.Perm() {
			return fmt.Errorf("%s: %s, want a regular file with mode %04o", p, info.Mode(), f.Mode.Perm())
		}
		data, err := regular.ReadFile(p, regular.MaxStored)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			return fmt.Errorf("%s: the bytes read back differ from what was backed up", p)
		}
		seen++
		return nil
	})
	if err == nil && seen != len(want) {
		err = fmt.Errorf("%s: %d of %d files", dir, seen, len(want))
	}
	if err != nil {
		return fmt.Errorf("verify backup %s: %w", dir, err)
	}
	return nil
}

// BackupRetiredCAs backs up the CA pair held by every version of caDir
// other than the one in effect, each under root as ca-SERIAL (verified,
// an identical earlier backup reused), and returns the directories. A
// caller runs it right before atomicdir.DropOld(caDir): whatever a crash
// left or an operator put in PKI/backup, the retired CA key then exists
// in a verified backup before its last copy in the CA store goes.
func BackupRetiredCAs(root, caDir string) ([]string, error) {
	cur, err := atomicdir.Current(caDir)
	if err != nil {
		return nil, err
	}
	vers, err := atomicdir.Versions(caDir)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, ver := range vers {
		if ver == cur {
			continue
		}
		key, kerr := regular.ReadFile(filepath.Join(ver, pki.CAKeyFile), regular.MaxPEM)
		if errors.Is(kerr, fs.ErrNotExist) {
			continue // no key here: nothing that could be lost
		}
		if kerr != nil {
			return nil, fmt.Errorf("back up the retired CA in %s: %w", ver, kerr)
		}
		crt, cerr := regular.ReadFile(filepath.Join(ver, pki.CAFile), regular.MaxPEM)
		if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("back up the retired CA in %s: %w", ver, cerr)
		}
		if cur != "" {
			if inEffect, err := regular.ReadFile(filepath.Join(cur, pki.CAKeyFile), regular.MaxPEM); err == nil && bytes.Equal(inEffect, key) {
				continue // the key in effect: not retired
			}
		}
		base := "ca-unknown"
		files := []atomicdir.File{{Name: pki.CAKeyFile, Data: key, Mode: atomicdir.CAKeyMode}}
		if cerr == nil {
			files = append(files, atomicdir.File{Name: pki.CAFile, Data: crt, Mode: atomicdir.CertMode})
			if c, err := ca.ParseCert(crt); err == nil {
				base = "ca-" + certx.Serial(c)
			}
		}
		dir, _, err := WriteBackup(root, base, files, true)
		if err != nil {
			return nil, fmt.Errorf("back up the retired CA in %s: %w", ver, err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}
