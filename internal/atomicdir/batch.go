package atomicdir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// Batch prepares updates of several directories and puts them in effect
// together. Its fsyncs run concurrently, in two rounds (the new files,
// then the directories that were switched), so the filesystem commits
// them together instead of one after another: a bootstrap writes dozens
// of small files and serial fsync latency would dominate it. Only our own
// files are synced (not the whole filesystem, which could hold unrelated
// dirty data). Each directory still switches in one rename, and only
// after its new version is durable.
//
// A batch that fails takes back what it did: Abort (before Commit) and a
// failed Commit remove every version, file and directory the batch
// created and switch every directory it had switched back to the version
// before, so an error leaves the tree as it found it.
type Batch struct {
	pending []*prepared
	writes  []*pendingWrite
	results []*Result
	// created lists the directories this batch made, parents first.
	created []string
	// undo takes back each switch and rename of a Commit, in order.
	undo []func()
}

type prepared struct {
	st      Store
	version string
	names   []string
	result  *Result
}

type pendingWrite struct {
	tmp, path string
	// old is what path held before (nil when it did not exist), to put
	// back if the batch fails after renaming over it.
	old     []byte
	oldMode fs.FileMode
}

// Dir makes sure dir exists and has DirMode, creating it and its missing
// parents (0700: every directory etcdpki makes holds keys or leads to
// them). Directories it creates are removed again if the batch fails.
func (b *Batch) Dir(dir string) error {
	if err := b.mkdirAll(filepath.Clean(dir)); err != nil {
		return err
	}
	return enforceMode(dir, DirMode|fs.ModeDir)
}

// Created reports whether this batch created dir.
func (b *Batch) Created(dir string) bool {
	return slices.Contains(b.created, filepath.Clean(dir))
}

func (b *Batch) mkdirAll(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("create %s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := b.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := step("mkdir", dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if info, serr := os.Stat(dir); serr == nil && info.IsDir() {
			return nil // made meanwhile by another run, which owns it
		}
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b.created = append(b.created, dir)
	return nil
}

// Update prepares dir's new version (see the package function Update);
// nothing is in effect until Commit.
func (b *Batch) Update(st Store, files []File, validate func(map[string][]byte) error) (*Result, error) {
	res := &Result{}
	b.results = append(b.results, res)
	if err := st.check(); err != nil {
		return res, err
	}
	dir, sv := st.Dir, st.view()
	if err := b.Dir(dir); err != nil {
		return res, err
	}
	if err := b.Dir(sv.sd); err != nil {
		return res, err
	}
	if err := repair(sv); err != nil {
		return res, err
	}
	if err := migrateLegacy(st); err != nil {
		return res, err
	}
	if err := migrateFlat(st, files); err != nil {
		return res, err
	}
	cur, err := current(sv.sd)
	if err != nil {
		return res, err
	}
	if cur != "" {
		if err := enforceMode(cur, DirMode|fs.ModeDir); err != nil {
			return res, err
		}
	}
	contents, err := readVersion(cur)
	if err != nil {
		return res, err
	}
	same := cur != ""
	for _, f := range files {
		if strings.HasPrefix(f.Name, versionPrefix) || strings.ContainsRune(f.Name, os.PathSeparator) || isTemp(f.Name) {
			return res, fmt.Errorf("bad file name %q", f.Name)
		}
		old, ok := contents[f.Name]
		if !ok || !bytes.Equal(old.Data, f.Data) || !sv.isLink(f.Name) {
			same = false
		}
		contents[f.Name] = f
	}
	if same {
		// Nothing new: only make sure the modes are what they must be.
		for _, f := range files {
			p := filepath.Join(cur, f.Name)
			info, err := os.Stat(p)
			if err != nil {
				return res, err
			}
			if info.Mode().Perm() != f.Mode {
				if err := chmod(p, f.Mode); err != nil {
					return res, fmt.Errorf("fix mode of %s: %w", filepath.Join(dir, f.Name), err)
				}
			}
		}
		return res, nil
	}
	if validate != nil {
		m := map[string][]byte{}
		for n, f := range contents {
			m[n] = f.Data
		}
		if err := validate(m); err != nil {
			return res, err
		}
	}
	version, names, err := writeVersion(sv.sd, contents, false)
	if err != nil {
		return res, err
	}
	res.Changed, res.Previous = true, cur
	b.pending = append(b.pending, &prepared{st: st, version: version, names: names, result: res})
	return res, nil
}

// WriteFile prepares replacing path with data (see the package function
// WriteFile) and reports whether the bytes will change.
func (b *Batch) WriteFile(path string, data []byte, mode fs.FileMode) (bool, error) {
	if err := b.mkdirAll(filepath.Dir(path)); err != nil {
		return false, err
	}
	if err := removeStaleTemps(path); err != nil {
		return false, err
	}
	w := &pendingWrite{path: path}
	old, err := regular.ReadFile(path, regular.MaxStored)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, enforceMode(path, mode)
	case err == nil:
		info, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		w.old, w.oldMode = old, info.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := writeTemp(path, data, mode, false)
	if err != nil {
		return false, err
	}
	w.tmp = tmp
	b.writes = append(b.writes, w)
	return true, nil
}

// Abort removes whatever the batch prepared, none of it in effect, and
// the directories it created.
func (b *Batch) Abort() {
	for _, p := range b.pending {
		os.RemoveAll(filepath.Join(p.st.Path(), p.version))
	}
	for _, w := range b.writes {
		os.Remove(w.tmp)
	}
	for i := len(b.created) - 1; i >= 0; i-- {
		// Only if empty: the caller may have put its own files there.
		os.Remove(b.created[i])
	}
	b.pending, b.writes, b.created, b.undo = nil, nil, nil, nil
}

// rollback takes back a Commit that failed halfway: every directory it
// switched goes back to its previous version, every file it replaced
// gets its old bytes back, then Abort removes the rest.
func (b *Batch) rollback() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
	b.Abort()
}

// Results lists each Update's result in call order.
func (b *Batch) Results() []Result {
	out := make([]Result, len(b.results))
	for i, r := range b.results {
		out[i] = *r
	}
	return out
}

// Commit makes every prepared version durable, then switches each
// directory's "..data" (and renames each prepared file) into place, then
// makes the switches durable and prunes old versions. If any of that
// fails, Commit takes back what it did (see Batch) and returns the error.
func (b *Batch) Commit() error {
	if len(b.pending) == 0 && len(b.writes) == 0 {
		b.created = nil
		return nil
	}
	// Round one: every new file and version directory.
	var fresh, parents []string
	seen := map[string]bool{}
	for _, p := range b.pending {
		ver := filepath.Join(p.st.Path(), p.version)
		for _, n := range p.names {
			fresh = append(fresh, filepath.Join(ver, n))
		}
		fresh = append(fresh, ver)
		for _, d := range []string{p.st.Path(), p.st.Dir} {
			if !seen[d] {
				seen[d] = true
				parents = append(parents, d)
			}
		}
	}
	for _, w := range b.writes {
		fresh = append(fresh, w.tmp)
		if d := filepath.Dir(w.path); !seen[d] {
			seen[d] = true
			parents = append(parents, d)
		}
	}
	if err := syncAll(fresh); err != nil {
		b.Abort()
		return err
	}
	for _, p := range b.pending {
		if err := b.switchVersion(p); err != nil {
			b.rollback()
			return err
		}
	}
	for _, w := range b.writes {
		if err := rename(w.tmp, w.path); err != nil {
			b.rollback()
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		b.undo = append(b.undo, func() { restore(w) })
	}
	// Round two: the directories whose entries were switched.
	if err := syncAll(parents); err != nil {
		b.rollback()
		return err
	}
	// In effect and durable. Pruning is housekeeping: a failure leaves an
	// extra old version, which the next update prunes.
	for _, p := range b.pending {
		_ = prune(p.st.Path(), p.result.Previous)
	}
	b.pending, b.writes, b.created, b.undo = nil, nil, nil, nil
	return nil
}

// switchVersion points the store's DataLink at its new version with one
// rename, then points its public names at the store, and records how to
// take both back. A name that pointed into another store sharing the
// directory (a ca.crt both bundles carry) now points into this one, as a
// copy of this bundle would leave it; undo points it back.
func (b *Batch) switchVersion(p *prepared) error {
	sv := p.st.view()
	if err := replaceSymlink(sv.sd, DataLink, p.version); err != nil {
		return err
	}
	type link struct{ name, old string }
	var made []link
	prev := p.result.Previous
	b.undo = append(b.undo, func() {
		if prev != "" {
			_ = replaceSymlink(sv.sd, DataLink, filepath.Base(prev))
		} else {
			os.Remove(filepath.Join(sv.sd, DataLink))
		}
		for _, l := range made {
			if l.old == "" {
				os.Remove(filepath.Join(sv.dir, l.name))
			} else {
				_ = replaceSymlink(sv.dir, l.name, l.old)
			}
		}
	})
	// The links only ever point through DataLink, so creating them after
	// the switch exposes complete contents only.
	for _, n := range p.names {
		if !sv.isLink(n) {
			old, _ := os.Readlink(filepath.Join(sv.dir, n))
			if err := replaceSymlink(sv.dir, n, filepath.Join(sv.prefix, n)); err != nil {
				return err
			}
			made = append(made, link{n, old})
		}
	}
	return nil
}

// restore puts back what w.path held before the batch renamed over it.
func restore(w *pendingWrite) {
	if w.old == nil {
		os.Remove(w.path)
		return
	}
	tmp, err := writeTemp(w.path, w.old, w.oldMode, true)
	if err != nil {
		return
	}
	if err := os.Rename(tmp, w.path); err != nil {
		os.Remove(tmp)
	}
}

// syncAll fsyncs paths (files or directories) concurrently.
func syncAll(paths []string) error {
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = syncPath(p)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
