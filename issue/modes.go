package issue

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// Tighten re-tightens the modes of everything etcdpki owns in the PKI
// directory, whichever writer runs: every key 0600, every CA key 0400,
// every directory of the layout (the PKI directory, nodes/, each bundle
// and store, each version, backup/ and what is in it) 0700, and a
// certificate with more than 0644 back to 0644. A writer that touched one
// store would otherwise leave a loose key in the next (os.WriteFile and a
// rename never fix the mode of a file they do not write). It follows no
// link, so nothing outside the layout is changed, and it changes only a
// mode that is looser or otherwise different. The caller holds the lock
// and passes the inventory its command expanded; it returns what it
// changed, for the output.
func Tighten(inv *pki.Inventory) ([]string, error) {
	p := inv.Paths
	stores := map[string]bool{p.CADir(): true, p.NextCADir(): true}
	for _, t := range inv.Targets {
		stores[t.Dir], stores[t.CADir] = true, true
	}
	dirs := inv.OwnedDirs()
	for d := range stores {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var fixed []string
	fix := func(path string, want fs.FileMode) error {
		info, err := os.Lstat(path)
		if err != nil || info.Mode()&fs.ModeSymlink != 0 || info.Mode().Perm() == want {
			return nil // missing, a link, or right already
		}
		if !info.IsDir() && !info.Mode().IsRegular() {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("tighten the mode of %s: %w", path, err)
		}
		fixed = append(fixed, fmt.Sprintf("%s %04o -> %04o", path, info.Mode().Perm(), want))
		return nil
	}
	for _, d := range dirs {
		if err := fix(d, atomicdir.DirMode); err != nil {
			return fixed, err
		}
		if info, err := os.Lstat(d); err != nil || !stores[d] || info.Mode()&fs.ModeSymlink != 0 {
			continue // a link is followed nowhere: it may lead out of the PKI
		}
		if err := tightenStore(d, fix); err != nil {
			return fixed, err
		}
	}
	if err := filepath.WalkDir(p.Backups(), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil // no backups yet, or one being written
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return fix(path, atomicdir.DirMode)
		}
		return fix(path, fileMode(d.Name(), mustMode(d)))
	}); err != nil {
		return fixed, err
	}
	return fixed, nil
}

// tightenStore fixes the modes of the store directories ("..NAME.store"),
// versions ("..<time>") and files below a bundle directory dir, in the
// named-store layout and the one before it (see package atomicdir).
func tightenStore(dir string, fix func(string, fs.FileMode) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // a store not written yet
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "..") {
			continue // links and files beside the stores are not ours to fix
		}
		sub := filepath.Join(dir, e.Name())
		if err := fix(sub, atomicdir.DirMode); err != nil {
			return err
		}
		if strings.HasSuffix(e.Name(), ".store") {
			err = tightenStore(sub, fix)
		} else {
			err = tightenFiles(sub, fix)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tightenFiles fixes the modes of the files directly in dir.
func tightenFiles(dir string, fix func(string, fs.FileMode) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := fix(filepath.Join(dir, e.Name()), fileMode(e.Name(), mustMode(e))); err != nil {
			return err
		}
	}
	return nil
}

// fileMode is the mode a file of the layout should have, from its name:
// ca.key 0400, any other key 0600, anything else (certificates) at most
// 0644.
func fileMode(name string, have fs.FileMode) fs.FileMode {
	switch {
	case name == "ca.key":
		return atomicdir.CAKeyMode
	case strings.HasSuffix(name, ".key"):
		return atomicdir.KeyMode
	case have.Perm()&^atomicdir.CertMode != 0:
		return atomicdir.CertMode
	}
	return have.Perm()
}

func mustMode(d fs.DirEntry) fs.FileMode {
	info, err := d.Info()
	if err != nil {
		return 0
	}
	return info.Mode()
}

// tighten runs Tighten for a writer of this package and says what it
// changed.
func (o Options) tighten(inv *pki.Inventory) error {
	fixed, err := Tighten(inv)
	for _, f := range fixed {
		o.printf("[modes] tightened %s", f)
	}
	return err
}
