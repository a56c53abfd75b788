// atomicdir.go is long on purpose (about 1000 lines): the versioned
// store, the batch that switches several stores together, and its
// rollback and crash repair share one set of invariants about which
// version is in effect, and reading them in one file is how a reviewer
// checks that no path breaks them.

// Package atomicdir keeps a directory of certificates and keys whose
// contents switch all at once.
//
// etcd (and kube-apiserver's etcd client) open the certificate file and the
// key file separately at every TLS handshake, so renaming a new cert and
// then a new key into place lets a handshake in between pair a new cert
// with an old key. Instead, as Kubernetes' secret volumes and kubelet's
// certificate store do, the real files live in a versioned directory and
// the public names are symlinks through one "..data" link:
//
//	dir/server.crt -> ..data/server.crt
//	dir/..data     -> ..2026_11_26_06_45_12.123456789
//
// A new version is written and fsynced in full, then "..data" is replaced
// with a single rename. A crash at any point leaves either the old or the
// new version in effect, never a mix.
package atomicdir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// File modes, enforced on every update even when the bytes are unchanged,
// because os.WriteFile never fixes the mode of an existing file.
const (
	// DirMode keeps bundles private to their owner: they hold keys.
	DirMode fs.FileMode = 0o700
	// CertMode: certificates are public, but readable only through the
	// 0700 directory anyway.
	CertMode fs.FileMode = 0o644
	// KeyMode: private keys are for the owner (etcd's user) only.
	KeyMode fs.FileMode = 0o600
	// CAKeyMode: the CA key is read-only even for its owner, so that no
	// tool rewrites it by accident.
	CAKeyMode fs.FileMode = 0o400
)

// DataLink is the symlink that names the current version.
const DataLink = "..data"

const versionPrefix = ".."

// File is one file of a directory version.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode
}

// Result says what Update did.
type Result struct {
	// Changed is true when a new version was put in effect.
	Changed bool
	// Previous is the version directory that was in effect before, ""
	// if there was none. It is kept until the next update so that a
	// reader that resolved the old path can finish.
	Previous string
}

// Read returns the contents of name in dir as the next update will see
// them: through its public link, or, when a crash left that link missing
// or "..data" naming a version that is gone, from the version the next
// update repairs the directory to (see Update). It changes nothing, so a
// run can plan, and refuse bad input, before it writes anything.
func Read(dir, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	ver, _, verr := effective(dir)
	if verr != nil || ver == "" {
		return nil, err
	}
	if data, verr := os.ReadFile(filepath.Join(dir, ver, name)); verr == nil {
		return data, nil
	}
	return nil, err
}

// Current returns the path of the version directory in effect, or "" when
// dir has no versions yet.
func Current(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, DataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Join(dir, DataLink), err)
	}
	return filepath.Join(dir, target), nil
}

// Update makes files part of dir's contents. Files already in dir and not
// named in files are carried over unchanged. validate, if not nil, sees
// the complete new contents (name to bytes) before anything is switched,
// so a cert/key pair check can veto a mismatched pair. When every file is
// already present with the same bytes, nothing is written; modes are
// still enforced.
//
// Before anything else, Update repairs what a crash (kill -9, power loss)
// of an earlier update can leave in dir: temporary files and links, a
// version written but never switched to, public links not yet created,
// and "..data" naming a version that is gone (it then falls back to the
// version before, which was complete when it was in effect). Callers
// hold the PKI directory's lock, so nobody else is writing those files.
func Update(dir string, files []File, validate func(map[string][]byte) error) (Result, error) {
	var b Batch
	if _, err := b.Update(dir, files, validate); err != nil {
		b.Abort()
		return Result{}, err
	}
	if err := b.Commit(); err != nil {
		return Result{}, err
	}
	return b.Results()[0], nil
}

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
	dir, version string
	names        []string
	result       *Result
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
func (b *Batch) Update(dir string, files []File, validate func(map[string][]byte) error) (*Result, error) {
	res := &Result{}
	b.results = append(b.results, res)
	if err := b.Dir(dir); err != nil {
		return res, err
	}
	if err := repair(dir); err != nil {
		return res, err
	}
	if err := migrateFlat(dir, files); err != nil {
		return res, err
	}
	cur, err := Current(dir)
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
		if !ok || !bytes.Equal(old.Data, f.Data) || !isLinkToData(dir, f.Name) {
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
	version, names, err := writeVersion(dir, contents, false)
	if err != nil {
		return res, err
	}
	res.Changed, res.Previous = true, cur
	b.pending = append(b.pending, &prepared{dir: dir, version: version, names: names, result: res})
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
	old, err := os.ReadFile(path)
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
		os.RemoveAll(filepath.Join(p.dir, p.version))
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
		ver := filepath.Join(p.dir, p.version)
		for _, n := range p.names {
			fresh = append(fresh, filepath.Join(ver, n))
		}
		fresh = append(fresh, ver)
		if !seen[p.dir] {
			seen[p.dir] = true
			parents = append(parents, p.dir)
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
		_ = prune(p.dir, p.result.Previous)
	}
	b.pending, b.writes, b.created, b.undo = nil, nil, nil, nil
	return nil
}

// switchVersion points p.dir's "..data" at its new version with one
// rename, then creates any missing public links, and records how to take
// both back.
func (b *Batch) switchVersion(p *prepared) error {
	if err := replaceSymlink(p.dir, DataLink, p.version); err != nil {
		return err
	}
	var made []string
	prev := p.result.Previous
	b.undo = append(b.undo, func() {
		if prev != "" {
			_ = replaceSymlink(p.dir, DataLink, filepath.Base(prev))
		} else {
			os.Remove(filepath.Join(p.dir, DataLink))
		}
		for _, n := range made {
			os.Remove(filepath.Join(p.dir, n))
		}
	})
	// The links only ever point through ..data, so creating them after
	// the switch exposes complete contents only.
	for _, n := range p.names {
		if !isLinkToData(p.dir, n) {
			if err := replaceSymlink(p.dir, n, filepath.Join(DataLink, n)); err != nil {
				return err
			}
			made = append(made, n)
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

// readVersion reads every file of a version directory ("" reads as empty).
func readVersion(ver string) (map[string]File, error) {
	contents := map[string]File{}
	if ver == "" {
		return contents, nil
	}
	entries, err := os.ReadDir(ver)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ver, err)
	}
	for _, e := range entries {
		p := filepath.Join(ver, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		contents[e.Name()] = File{Name: e.Name(), Data: data, Mode: info.Mode().Perm()}
	}
	return contents, nil
}

// writeVersion writes a complete new version directory. With fsync set,
// every file and the directory are synced here (for one-off use, such as
// migration); a batch syncs them all at once in Commit.
func writeVersion(dir string, contents map[string]File, fsync bool) (string, []string, error) {
	name := versionPrefix + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	ver := filepath.Join(dir, name)
	if err := step("mkdir", ver); err != nil {
		return "", nil, fmt.Errorf("create version in %s: %w", dir, err)
	}
	if err := os.Mkdir(ver, DirMode); err != nil {
		return "", nil, fmt.Errorf("create version in %s: %w", dir, err)
	}
	names := make([]string, 0, len(contents))
	for n := range contents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := contents[n]
		if err := writeNew(filepath.Join(ver, n), f.Data, f.Mode, fsync); err != nil {
			os.RemoveAll(ver)
			return "", nil, err
		}
	}
	if fsync {
		if err := syncPath(ver); err != nil {
			os.RemoveAll(ver)
			return "", nil, err
		}
	}
	return name, names, nil
}

// switchVersion points "..data" at version with one rename, then creates
// any missing public links (for migrateFlat, whose new version holds the
// same bytes as the old files: nothing to take back).
func switchVersion(dir, version string, names []string) error {
	if err := replaceSymlink(dir, DataLink, version); err != nil {
		os.RemoveAll(filepath.Join(dir, version))
		return err
	}
	for _, n := range names {
		if !isLinkToData(dir, n) {
			if err := replaceSymlink(dir, n, filepath.Join(DataLink, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// effective names the version dir's contents are, or after repair will
// be: the one "..data" points at, or, when that version is gone, the
// newest one older than it (every older version was in effect once, so
// it is complete; a newer one may be a version a crash left half
// written). ok is false when "..data" must be changed to get there.
func effective(dir string) (ver string, ok bool, err error) {
	target, err := os.Readlink(filepath.Join(dir, DataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", filepath.Join(dir, DataLink), err)
	}
	vs, err := versions(dir)
	if err != nil {
		return "", false, err
	}
	if slices.Contains(vs, target) {
		return target, true, nil
	}
	for _, v := range vs {
		if v < target {
			ver = v
		}
	}
	return ver, false, nil
}

// versions lists dir's version directories, oldest first (their names
// are timestamps).
func versions(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var vs []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, versionPrefix) && n != DataLink && !isTemp(n) && e.IsDir() {
			vs = append(vs, n)
		}
	}
	sort.Strings(vs)
	return vs, nil
}

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

// isTemp matches the temporary names atomicdir creates: links being
// switched ("..link.tmpN") and files being replaced (".NAME.tmpN").
func isTemp(name string) bool {
	if strings.HasPrefix(name, versionPrefix+"link.tmp") {
		return true
	}
	i := strings.LastIndex(name, ".tmp")
	if !strings.HasPrefix(name, ".") || i <= 0 {
		return false
	}
	digits := name[i+len(".tmp"):]
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
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

func isLinkToData(dir, name string) bool {
	target, err := os.Readlink(filepath.Join(dir, name))
	return err == nil && target == filepath.Join(DataLink, name)
}

// replaceSymlink points dir/name at target with one rename.
func replaceSymlink(dir, name, target string) error {
	tmp := filepath.Join(dir, fmt.Sprintf("%s.tmp%d", versionPrefix+"link", time.Now().UnixNano()))
	if err := step("symlink", tmp); err != nil {
		return fmt.Errorf("link %s: %w", filepath.Join(dir, name), err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", filepath.Join(dir, name), err)
	}
	if err := rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("switch %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// prune removes versions older than the one just replaced.
func prune(dir, keep string) error {
	cur, err := Current(dir)
	if err != nil {
		return err
	}
	vs, err := versions(dir)
	if err != nil {
		return err
	}
	for _, n := range vs {
		p := filepath.Join(dir, n)
		if p == cur || p == keep {
			continue
		}
		if err := remove(p); err != nil {
			return fmt.Errorf("remove old version %s: %w", p, err)
		}
	}
	return nil
}

// WriteFile replaces path with data in one rename, after fsync, and
// enforces mode. It reports whether the bytes changed; an identical file
// is left untouched apart from its mode. Temporary files a crashed
// earlier write left beside path are removed.
func WriteFile(path string, data []byte, mode fs.FileMode) (bool, error) {
	var b Batch
	changed, err := b.WriteFile(path, data, mode)
	if err != nil {
		b.Abort()
		return false, err
	}
	return changed, b.Commit()
}

// writeTemp writes data to a temporary file beside path, to be renamed
// over it.
func writeTemp(path string, data []byte, mode fs.FileMode, fsync bool) (string, error) {
	dir := filepath.Dir(path)
	if err := step("create", filepath.Join(dir, "."+filepath.Base(path)+".tmp")); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if fsync {
		if err := tmp.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	return name, nil
}

func writeNew(path string, data []byte, mode fs.FileMode, fsync bool) error {
	if err := step("create", path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The umask may have narrowed the mode; make it exact.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f.Close()
}

// syncPath fsyncs a file or a directory.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

func enforceMode(path string, mode fs.FileMode) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode() != mode {
		if err := chmod(path, mode.Perm()); err != nil {
			return fmt.Errorf("fix mode of %s: %w", path, err)
		}
	}
	return nil
}

// The filesystem steps below are the ones a crash can fall between; each
// goes through step so that tests can stop the sequence at any of them.

func chmod(path string, mode fs.FileMode) error {
	if err := step("chmod", path); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func rename(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

func remove(path string) error {
	if err := step("remove", path); err != nil {
		return err
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// NewDir creates dir holding files (whose names may contain slashes) in
// one rename: they are written and synced in a staging directory beside
// dir, which is then renamed to dir. A crash therefore leaves no dir or a
// whole one, never a half-written one; the staging directory a crash
// leaves is removed by the next NewDir beside it. dir must not exist.
// undo removes dir again, with the parents NewDir created.
func NewDir(dir string, files []File) (undo func(), err error) {
	var b Batch
	parent := filepath.Dir(dir)
	if err := b.mkdirAll(parent); err != nil {
		b.Abort()
		return nil, err
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		b.Abort()
		return nil, fmt.Errorf("read %s: %w", parent, err)
	}
	for _, e := range entries {
		if e.IsDir() && isTemp(e.Name()) {
			if err := remove(filepath.Join(parent, e.Name())); err != nil {
				b.Abort()
				return nil, err
			}
		}
	}
	stage := filepath.Join(parent, fmt.Sprintf(".%s.tmp%d", filepath.Base(dir), time.Now().UnixNano()))
	fail := func(err error) (func(), error) {
		os.RemoveAll(stage)
		b.Abort()
		return nil, err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fail(fmt.Errorf("create %s: already exists", dir))
	}
	var sb Batch // the directories inside stage
	if err := sb.mkdirAll(stage); err != nil {
		return fail(err)
	}
	var synced []string
	for _, f := range files {
		p := filepath.Join(stage, f.Name)
		if err := sb.mkdirAll(filepath.Dir(p)); err != nil {
			return fail(err)
		}
		if err := writeNew(p, f.Data, f.Mode, false); err != nil {
			return fail(err)
		}
		synced = append(synced, p)
	}
	synced = append(synced, sb.created...)
	if err := syncAll(synced); err != nil {
		return fail(err)
	}
	if err := rename(stage, dir); err != nil {
		return fail(fmt.Errorf("create %s: %w", dir, err))
	}
	if err := syncPath(parent); err != nil {
		os.RemoveAll(dir)
		return fail(err)
	}
	return func() {
		os.RemoveAll(dir)
		b.Abort()
	}, nil
}
