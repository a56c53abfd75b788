package atomicdir

// Repair and migration: what a crash of an earlier update left, and
// plain files another tool left, brought into the layout before an update.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// repair brings dir back to a consistent state after a crash of an
// earlier update: see Update.
func repair(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if isTemp(e.Name()) {
			if err := remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	eff, ok, err := effective(dir)
	if err != nil {
		return err
	}
	if !ok {
		if eff != "" {
			if err := replaceSymlink(dir, DataLink, eff); err != nil {
				return err
			}
		} else if err := remove(filepath.Join(dir, DataLink)); err != nil {
			return err
		}
	}
	vs, err := versions(dir)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if eff == "" || v > eff {
			// Never in effect: written by a run that died before its switch.
			if err := remove(filepath.Join(dir, v)); err != nil {
				return err
			}
		}
	}
	inEffect := map[string]bool{}
	if eff != "" {
		es, err := os.ReadDir(filepath.Join(dir, eff))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, eff), err)
		}
		for _, e := range es {
			inEffect[e.Name()] = true
			if _, err := os.Lstat(filepath.Join(dir, e.Name())); errors.Is(err, fs.ErrNotExist) {
				if err := replaceSymlink(dir, e.Name(), filepath.Join(DataLink, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	// Links into a version no longer in effect lead nowhere: a reader
	// must see "missing", and the next update recreates them.
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 && !inEffect[e.Name()] && isLinkToData(dir, e.Name()) {
			if err := remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeStaleTemps removes the temporary files a crashed run left beside
// path (".NAME.tmpN"), so they neither pile up nor travel with a bundle.
func removeStaleTemps(path string) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		n := e.Name()
		if isTemp(n) && strings.HasPrefix(n, "."+base+".tmp") && e.Type().IsRegular() {
			if err := remove(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateFlat turns plain files that a previous tool (kubeadm, cfssl
// recipes) left in dir into a first version with the same bytes, so the
// update that follows switches them atomically like any other.
func migrateFlat(dir string, files []File) error {
	contents := map[string]File{}
	cur, err := Current(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		contents[f.Name] = File{Name: f.Name, Data: data, Mode: info.Mode().Perm()}
	}
	if len(contents) == 0 {
		return nil
	}
	carried, err := readVersion(cur)
	if err != nil {
		return err
	}
	for n, f := range carried {
		if _, ok := contents[n]; !ok {
			contents[n] = f
		}
	}
	// Same bytes as the plain files, so replacing them one by one with
	// links never shows a reader a mismatched pair.
	version, names, err := writeVersion(dir, contents, true)
	if err != nil {
		return err
	}
	if err := switchVersion(dir, version, names); err != nil {
		return err
	}
	return syncPath(dir)
}
