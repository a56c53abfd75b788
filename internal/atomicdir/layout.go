package atomicdir

// The version layout: a store directory holds its version directories
// (named by timestamp), the "..data" link naming the one in effect, and
// one public link per file through "..data".

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// DataLink is the symlink, inside a store's directory, that names the
// version in effect.
const DataLink = "..data"

const versionPrefix = ".."

// storeSuffix ends a store directory's name: "..NAME.store". No version
// ("..2026_..."), link ("..data") or temporary name ends with it, and no
// kubeadm file starts with "..", so a store's directory can share a
// bundle directory with anything a host keeps there.
const storeSuffix = ".store"

// Store is one versioned store: the directory its public names are in,
// and the name that keeps its versions apart from every other store whose
// public names share that directory. Its versions and its DataLink live
// in Dir/..Name.store; each public name is a link through them:
//
//	Dir/server.crt              -> ..etcd-node-1.store/..data/server.crt
//	Dir/..etcd-node-1.store/..data -> ..2026_11_26_06_45_12.123456789
//
// Two bundles copied into one directory (a node's and kube-apiserver's,
// in /etc/kubernetes/pki/etcd) therefore never share a link or a version:
// a name both carry (ca.crt) points into whichever was copied last, and
// each store holds its own copy of it.
type Store struct {
	Dir  string
	Name string
}

// Path is the directory holding the store's versions and its DataLink.
func (s Store) Path() string { return filepath.Join(s.Dir, storeDirName(s.Name)) }

// target is what the public link name points at.
func (s Store) target(name string) string {
	return filepath.Join(storeDirName(s.Name), DataLink, name)
}

func storeDirName(name string) string { return versionPrefix + name + storeSuffix }

// isStoreDirName matches a store's directory name.
func isStoreDirName(n string) bool {
	return len(n) > len(versionPrefix)+len(storeSuffix) && strings.HasPrefix(n, versionPrefix) &&
		strings.HasSuffix(n, storeSuffix)
}

func (s Store) check() error {
	if s.Name == "" || strings.HasPrefix(s.Name, ".") || strings.ContainsRune(s.Name, os.PathSeparator) {
		return fmt.Errorf("store in %s: bad store name %q", s.Dir, s.Name)
	}
	return nil
}

// view is one set of versions and the public links that point through
// them: a Store, or a store of the layout before named stores (legacy),
// whose versions and "..data" sat in the bundle directory itself.
type view struct {
	dir    string // the public names
	sd     string // the versions and DataLink
	prefix string // what a public link's target starts with: PREFIX/NAME
}

func (s Store) view() view {
	return view{dir: s.Dir, sd: s.Path(), prefix: filepath.Join(storeDirName(s.Name), DataLink)}
}

func legacyView(dir string) view { return view{dir: dir, sd: dir, prefix: DataLink} }

// isLink reports whether the public name points into this view.
func (v view) isLink(name string) bool {
	target, err := os.Readlink(filepath.Join(v.dir, name))
	return err == nil && target == filepath.Join(v.prefix, name)
}

// linksInto lists the public names that point into this view.
func (v view) linksInto() ([]string, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", v.dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 && v.isLink(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Resolve returns the version directory whose files dir's names show, as
// the next update will see them (after the repair of what a crash left,
// see Update), or "" when dir holds no versions. A reader that takes
// every file of a pair from this one directory never sees a cert from one
// version and a key from another. dir holds one store (as every store
// directory of a PKI does); a directory that holds several (a host's
// /etc/kubernetes/pki/etcd with two bundles in it) has no one answer.
func Resolve(dir string) (string, error) {
	v, err := find(dir)
	if err != nil || v == nil {
		return "", err
	}
	ver, _, err := effective(v.sd)
	if err != nil || ver == "" {
		return "", err
	}
	return filepath.Join(v.sd, ver), nil
}

// Versions lists the version directories of dir's store (see Resolve
// for which store), oldest first, the one in effect among them: for a
// caller that must save what an old version holds before DropOld removes
// it.
func Versions(dir string) ([]string, error) {
	v, err := find(dir)
	if err != nil || v == nil {
		return nil, err
	}
	vs, err := versions(v.sd)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i] = filepath.Join(v.sd, vs[i])
	}
	return vs, nil
}

// find returns the view the next update of dir works on: the layout
// before named stores while it is still in effect (the update migrates
// it, with the same bytes), else dir's one store; nil when dir holds no
// versions.
func find(dir string) (*view, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var stores []string
	for _, e := range entries {
		if e.IsDir() && isStoreDirName(e.Name()) {
			stores = append(stores, e.Name())
		}
	}
	if ver, _, err := effective(dir); err != nil {
		return nil, err
	} else if ver != "" {
		v := legacyView(dir)
		return &v, nil
	}
	switch len(stores) {
	case 0:
		return nil, nil
	case 1:
		name := strings.TrimSuffix(strings.TrimPrefix(stores[0], versionPrefix), storeSuffix)
		v := Store{Dir: dir, Name: name}.view()
		return &v, nil
	}
	return nil, fmt.Errorf("%s holds %d stores (%s): name the one to read", dir, len(stores), strings.Join(stores, ", "))
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
		data, err := regular.ReadFile(p, regular.MaxStored)
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

// switchVersion points v's DataLink at version with one rename, then
// creates any missing public links (for migration, whose new version
// holds the same bytes as what the names showed: nothing to take back).
func switchVersion(v view, version string, names []string) error {
	if err := replaceSymlink(v.sd, DataLink, version); err != nil {
		os.RemoveAll(filepath.Join(v.sd, version))
		return err
	}
	for _, n := range names {
		if !v.isLink(n) {
			if err := replaceSymlink(v.dir, n, filepath.Join(v.prefix, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// effective names the version sd's contents are, or after repair will
// be: the one DataLink points at, or, when that version is gone, the
// newest one older than it (every older version was in effect once, so
// it is complete; a newer one may be a version a crash left half
// written). ok is false when DataLink must be changed to get there.
func effective(sd string) (ver string, ok bool, err error) {
	target, err := os.Readlink(filepath.Join(sd, DataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", filepath.Join(sd, DataLink), err)
	}
	vs, err := versions(sd)
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

// versionLayout is a version directory's name after versionPrefix: the
// time it was written, so that names sort oldest first.
const versionLayout = "2006_01_02_15_04_05.000000000"

// isVersion matches a version directory's name, and nothing else: a
// store directory, a link or a temporary name beside it never does.
func isVersion(n string) bool {
	ts, ok := strings.CutPrefix(n, versionPrefix)
	if !ok || len(ts) != len(versionLayout) {
		return false
	}
	for i, c := range ts {
		want := versionLayout[i]
		if want >= '0' && want <= '9' {
			if c < '0' || c > '9' {
				return false
			}
		} else if byte(c) != want {
			return false
		}
	}
	return true
}

// versions lists sd's version directories, oldest first (their names
// are timestamps).
func versions(sd string) ([]string, error) {
	entries, err := os.ReadDir(sd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sd, err)
	}
	var vs []string
	for _, e := range entries {
		if isVersion(e.Name()) && e.IsDir() {
			vs = append(vs, e.Name())
		}
	}
	sort.Strings(vs)
	return vs, nil
}

// isTemp matches the temporary names atomicdir creates: links being
// switched ("..link.tmpN") and files being replaced (".NAME.tmpN").
func isTemp(name string) bool {
	if isStoreDirName(name) {
		return false
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

// current is the version DataLink names in sd, "" when there is none.
func current(sd string) (string, error) {
	target, err := os.Readlink(filepath.Join(sd, DataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Join(sd, DataLink), err)
	}
	return filepath.Join(sd, target), nil
}

// prune removes sd's versions but the one in effect and keep (the one
// just replaced). It only ever looks inside sd, one store's own
// directory, so it never removes another store's versions.
func prune(sd, keep string) error {
	cur, err := current(sd)
	if err != nil {
		return err
	}
	vs, err := versions(sd)
	if err != nil {
		return err
	}
	for _, n := range vs {
		p := filepath.Join(sd, n)
		if p == cur || p == keep {
			continue
		}
		if err := remove(p); err != nil {
			return fmt.Errorf("remove old version %s: %w", p, err)
		}
	}
	return nil
}
