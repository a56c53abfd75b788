package issue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// checkOwnBundle decides whether `etcdpki issue` may write t's bundle
// directory (t.Dir): it may create one that does not exist, and update
// one that is an etcdpki store for the same name; anything else that
// exists is bad input. An existing directory is never taken over: its
// mode would be narrowed to 0700 and its files turned into links (a
// kubeadm-style directory, /tmp, a system directory), which is not
// etcdpki's to do. It reports whether the bundle exists.
func checkOwnBundle(t pki.Target) (bool, error) {
	dir := t.Dir
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, pki.ReadError(dir, err)
	}
	if !info.IsDir() {
		return false, input.Errorf("%s: %s, where etcdpki would create the bundle directory; give a path that does not exist", dir, regular.Describe(info.Mode()))
	}
	notOurs := func(why string) (bool, error) {
		return false, input.Errorf("%s: exists and is not an etcdpki bundle for %q (%s); etcdpki issue writes only into a new directory or its own bundle for that name", dir, t.Owner, why)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, pki.ReadError(dir, err)
	}
	// The store's ..data link: in its own ..OWNER.store directory, or,
	// in the layout before named stores, in dir itself (see package
	// atomicdir). A directory there is a copy that followed the links.
	storeDir := filepath.Base(t.Store().Path())
	hasData := false
	for _, dl := range []string{filepath.Join(dir, storeDir, atomicdir.DataLink), filepath.Join(dir, atomicdir.DataLink)} {
		info, err := os.Lstat(dl)
		switch {
		case err != nil:
		case info.Mode()&fs.ModeSymlink == 0:
			rel, _ := filepath.Rel(dir, dl)
			return notOurs(rel + " is " + regular.Describe(info.Mode()) + ", not a link: a copy that followed the links (cp -rL, scp -r)? copy bundles with rsync -a or cp -a, which keep links")
		default:
			hasData = true
		}
	}
	// A run killed before its first switch leaves the directory it made
	// (0700) with nothing in it but stores, versions and temporary files;
	// any other directory without ..data was made by someone else.
	leftover := info.Mode().Perm() == atomicdir.DirMode
	public := []string{"ca.crt", t.CertName, t.KeyName}
	var foreign []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case slices.Contains(public, n):
			leftover = false
			target, _ := os.Readlink(filepath.Join(dir, n))
			switch {
			case e.Type()&fs.ModeSymlink == 0:
				foreign = append(foreign, n+" (a plain file)")
			case target != filepath.Join(storeDir, atomicdir.DataLink, n) && target != filepath.Join(atomicdir.DataLink, n):
				foreign = append(foreign, n+" (a link elsewhere)")
			}
		case strings.HasPrefix(n, "."):
			// Store directories, versions and temporary files.
		default:
			foreign = append(foreign, n)
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		if len(foreign) > 3 {
			foreign = append(foreign[:3], "...")
		}
		return notOurs("it holds " + strings.Join(foreign, ", "))
	}
	if !hasData {
		switch {
		case len(entries) == 0 && !leftover:
			return notOurs(fmt.Sprintf("an empty directory with mode %04o; etcdpki does not change the mode of a directory it did not create", info.Mode().Perm()))
		case !leftover:
			return notOurs("it has no " + atomicdir.DataLink + " link")
		}
		return false, nil // an earlier run's leftovers: written as new
	}
	return true, checkNotAnotherCert(t)
}

// keepOrBackUp decides what happens to the valid pair an existing bundle
// holds: kept when it is what was asked for and not yet due (re-running
// the same `etcdpki issue` changes nothing), otherwise backed up by the
// one backup writer before it is replaced. It returns the backup to
// take back if the write then fails, and a note for the output.
func keepOrBackUp(p pki.Paths, t pki.Target, info pki.CertInfo, o Options) (keep bool, undo func(), note string, err error) {
	if info.Status == pki.StatusOK && sameOrganization(info, t) {
		return true, nil, fmt.Sprintf("valid until %s, kept: the same request changes nothing (another --org, --ip or --dns replaces it, keeping a backup)", info.Expires.UTC().Format("2006-01-02")), nil
	}
	certPEM, keyPEM, rerr := pki.ReadTargetPair(t)
	if rerr != nil || certPEM == nil {
		return false, func() {}, "", nil // nothing whole to keep
	}
	name := filepath.Join("issued", t.Owner)
	if rel, err := filepath.Rel(p.PKI, t.Dir); err == nil && filepath.IsLocal(rel) {
		name = rel
	}
	dir, undo, err := WriteBackup(p.Backups(), o.now().UTC().Format("20060102T150405Z"), []atomicdir.File{
		{Name: filepath.Join(name, t.CertName), Data: certPEM, Mode: atomicdir.CertMode},
		{Name: filepath.Join(name, t.KeyName), Data: keyPEM, Mode: atomicdir.KeyMode},
	}, false)
	if err != nil {
		return false, nil, "", fmt.Errorf("back up %s: %w", t.Dir, err)
	}
	was := "an " + info.Status + " pair"
	switch info.Status {
	case pki.StatusOK:
		was = "the pair for another subject"
	case pki.StatusDue:
		was = "a pair due for renewal"
	case pki.StatusSANMismatch:
		was = "the pair for other SANs"
	}
	return false, undo, fmt.Sprintf("replaced %s; previous pair in %s", was, filepath.Join(dir, name)), nil
}

func sameOrganization(info pki.CertInfo, t pki.Target) bool {
	if info.Cert == nil {
		return false
	}
	have := slices.Clone(info.Cert.Subject.Organization)
	want := slices.Clone(t.Organization)
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}
