package atomicdir

// Repair and migration: what a crash of an earlier update left, the
// layout before named stores, and plain files another tool left, brought
// into the store before an update.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// repair brings v back to a consistent state after a crash of an earlier
// update: see Update.
func repair(v view) error {
	dirs := []string{v.dir}
	if v.sd != v.dir {
		dirs = append(dirs, v.sd)
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("read %s: %w", d, err)
		}
		for _, e := range entries {
			if isTemp(e.Name()) {
				if err := remove(filepath.Join(d, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	eff, ok, err := effective(v.sd)
	if err != nil {
		return err
	}
	if !ok {
		if eff != "" {
			if err := replaceSymlink(v.sd, DataLink, eff); err != nil {
				return err
			}
		} else if err := remove(filepath.Join(v.sd, DataLink)); err != nil {
			return err
		}
	}
	vs, err := versions(v.sd)
	if err != nil {
		return err
	}
	for _, ver := range vs {
		if eff == "" || ver > eff {
			// Never in effect: written by a run that died before its switch.
			if err := remove(filepath.Join(v.sd, ver)); err != nil {
				return err
			}
		}
	}
	inEffect := map[string]bool{}
	if eff != "" {
		es, err := os.ReadDir(filepath.Join(v.sd, eff))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(v.sd, eff), err)
		}
		for _, e := range es {
			inEffect[e.Name()] = true
			if _, err := os.Lstat(filepath.Join(v.dir, e.Name())); errors.Is(err, fs.ErrNotExist) {
				if err := replaceSymlink(v.dir, e.Name(), filepath.Join(v.prefix, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	// Links into a version no longer in effect lead nowhere: a reader
	// must see "missing", and the next update recreates them.
	links, err := v.linksInto()
	if err != nil {
		return err
	}
	for _, n := range links {
		if !inEffect[n] {
			if err := remove(filepath.Join(v.dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateLegacy moves a store of the layout before named stores ("..data"
// and the versions in st.Dir itself, the public names linked through
// them) into st, with the same bytes: it copies the version in effect
// into st and switches st's DataLink to it, then points each public name
// at st, one rename each, then removes the old link and versions. Both
// names of a file hold the same bytes, so a reader between two renames
// sees a matched pair, and every name resolves at every step; a crash at
// any step is resumed by the next update (the old "..data" goes only
// after no name points through it).
func migrateLegacy(st Store) error {
	if found, err := hasLegacy(st.Dir); err != nil || !found {
		return err
	}
	lv := legacyView(st.Dir)
	if err := repair(lv); err != nil {
		return err
	}
	eff, _, err := effective(st.Dir)
	if err != nil {
		return err
	}
	if eff != "" {
		if err := moveInto(st, filepath.Join(st.Dir, eff)); err != nil {
			return err
		}
	}
	// No name points through the old link any more.
	if err := remove(filepath.Join(st.Dir, DataLink)); err != nil {
		return err
	}
	vs, err := versions(st.Dir)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := remove(filepath.Join(st.Dir, v)); err != nil {
			return err
		}
	}
	return syncPath(st.Dir)
}

// hasLegacy reports whether dir holds anything of the layout before
// named stores: its "..data", a version, or a name linked through
// "..data".
func hasLegacy(dir string) (bool, error) {
	old, err := legacyView(dir).linksInto()
	if err != nil {
		return false, err
	}
	vs, err := versions(dir)
	if err != nil {
		return false, err
	}
	_, lerr := os.Lstat(filepath.Join(dir, DataLink))
	return len(old) > 0 || len(vs) > 0 || !errors.Is(lerr, fs.ErrNotExist), nil
}

// Migrate moves what st.Dir holds of the layout before named stores into
// st, with the same bytes (see Update), and reports whether there was
// anything to move. A directory that is missing or already in the new
// layout is left as it is.
func Migrate(st Store) (bool, error) {
	if err := st.check(); err != nil {
		return false, err
	}
	found, err := hasLegacy(st.Dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !found {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var b Batch
	if err := b.Dir(st.Path()); err != nil {
		return false, err
	}
	if err := repair(st.view()); err != nil {
		return false, err
	}
	return true, migrateLegacy(st)
}

// moveInto makes st hold the files of the old layout's version ver, then
// points every public name that went through the old "..data" at st.
func moveInto(st Store, ver string) error {
	sv, lv := st.view(), legacyView(st.Dir)
	contents, err := readVersion(ver)
	if err != nil {
		return err
	}
	cur, err := current(sv.sd)
	if err != nil {
		return err
	}
	have, err := readVersion(cur)
	if err != nil {
		return err
	}
	ours, err := sv.linksInto()
	if err != nil {
		return err
	}
	// A store some name already points into is the newer truth (a crash
	// came after the first rename); otherwise it takes the old bytes.
	if cur == "" || (len(ours) == 0 && !sameContents(have, contents)) {
		version, _, err := writeVersion(sv.sd, contents, true)
		if err != nil {
			return err
		}
		if err := replaceSymlink(sv.sd, DataLink, version); err != nil {
			os.RemoveAll(filepath.Join(sv.sd, version))
			return err
		}
		if err := syncPath(sv.sd); err != nil {
			return err
		}
	}
	old, err := lv.linksInto()
	if err != nil {
		return err
	}
	for _, n := range old {
		if err := replaceSymlink(st.Dir, n, st.target(n)); err != nil {
			return err
		}
	}
	return syncPath(st.Dir)
}

func sameContents(a, b map[string]File) bool {
	if len(a) != len(b) {
		return false
	}
	for n, f := range a {
		g, ok := b[n]
		if !ok || !bytes.Equal(f.Data, g.Data) || f.Mode != g.Mode {
			return false
		}
	}
	return true
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
// recipes) left in st.Dir into a version of st with the same bytes, so
// the update that follows switches them atomically like any other.
func migrateFlat(st Store, files []File) error {
	contents := map[string]File{}
	sv := st.view()
	cur, err := current(sv.sd)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(st.Dir, f.Name)
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		data, err := regular.ReadFile(p, regular.MaxStored)
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
	version, names, err := writeVersion(sv.sd, contents, true)
	if err != nil {
		return err
	}
	if err := switchVersion(sv, version, names); err != nil {
		return err
	}
	if err := syncPath(sv.sd); err != nil {
		return err
	}
	return syncPath(st.Dir)
}
