package issue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
	"golang.org/x/sys/unix"
)

// pending collects the files to put into one atomic store.
type pending struct {
	dir   string
	st    atomicdir.Store
	files []atomicdir.File
}

type plan struct {
	stores  []*pending
	byDir   map[string]*pending
	configs []atomicdir.File // Name is a full path here
	// dirs are the directories above the stores that etcdpki owns: made
	// or forced to 0700 (they hold keys, or lead to them).
	dirs []string
}

// add puts f into dir's next version; a file of the same name added
// before (a bundle's ca.crt, once per certificate in it) is replaced.
func (pl *plan) add(store atomicdir.Store, f atomicdir.File) {
	dir := store.Dir
	st := pl.byDir[dir]
	if st == nil {
		st = &pending{dir: dir, st: store}
		pl.byDir[dir] = st
		pl.stores = append(pl.stores, st)
	}
	for i := range st.files {
		if st.files[i].Name == f.Name {
			st.files[i] = f
			return
		}
	}
	st.files = append(st.files, f)
}

// write puts the plan on disk as one batch: every new version is written
// and synced, then each store switches (the CA's first, so no leaf is ever
// in effect without its issuer), then the files are renamed into place
// in plan order, and the switches are synced. It returns the configs
// that changed. Every writer of stores commits through it (init, adopt,
// renew, the CRL's writes). The caller aborts b when write fails, which
// takes back whatever it did.
func (pl *plan) write(b *atomicdir.Batch) (written []string, err error) {
	if err := pl.checkCRLs(); err != nil {
		return nil, err
	}
	for _, d := range pl.dirs {
		if err := b.Dir(d); err != nil {
			return nil, err
		}
	}
	for _, st := range pl.stores {
		if _, err := b.Update(st.st, st.files, checkStore); err != nil {
			return nil, fmt.Errorf("write %s: %w", st.dir, err)
		}
	}
	changed := make([]bool, len(pl.configs))
	for i, f := range pl.configs {
		var err error
		if changed[i], err = b.WriteFile(f.Name, f.Data, f.Mode); err != nil {
			return nil, err
		}
	}
	if err := b.Commit(); err != nil {
		return nil, err
	}
	for i, f := range pl.configs {
		if changed[i] {
			written = append(written, f.Name)
		}
	}
	return written, nil
}

// checkCRLs refuses a plan that would leave a node's etcd.env naming a
// CRL its bundle would not hold: etcd opens the CRL on every accepted
// connection, so a member started from that config refuses every client
// and peer ("open .../crl.der: no such file or directory") until a CRL
// comes. The CRL must be in the plan for that bundle, or in effect there
// already, and parse as etcd parses it. Every config write of issue
// passes here, so no command writes such a config.
func (pl *plan) checkCRLs() error {
	for _, f := range pl.configs {
		certDir := pki.EnvCertDir(f.Name)
		if certDir == "" {
			continue
		}
		env, err := pki.ParseEnv(f.Data)
		if err != nil {
			return fmt.Errorf("%s as planned: %w", f.Name, err)
		}
		if env[pki.EnvClientCRL] == "" && env[pki.EnvPeerCRL] == "" {
			continue
		}
		crl, planned := pl.file(certDir, pki.CRLFile)
		if !planned {
			if crl, err = atomicdir.Read(certDir, pki.CRLFile); err != nil {
				return fmt.Errorf("%s names %s, which its bundle would not hold (%v): a member started from it would refuse every connection; nothing written", f.Name, filepath.Join(certDir, pki.CRLFile), pathx.UnwrapPath(err))
			}
		}
		if _, err := pki.ParseCRL(crl); err != nil {
			return fmt.Errorf("%s names %s, which would not parse (%v): a member started from it would refuse every connection; nothing written", f.Name, filepath.Join(certDir, pki.CRLFile), err)
		}
	}
	return nil
}

// file is the data the plan puts into dir under name, if any.
func (pl *plan) file(dir, name string) ([]byte, bool) {
	if st := pl.byDir[dir]; st != nil {
		for _, f := range st.files {
			if f.Name == name {
				return f.Data, true
			}
		}
	}
	return nil, false
}

// initialCluster is PKI/initial-cluster.json: the members the cluster was
// bootstrapped with. etcd ignores initial-cluster-state once a member has
// data, so these stay "new" for good; every member added later gets
// "existing".
type initialCluster struct {
	Members []string `json:"members"`
}

func readInitialCluster(p pki.Paths) (*initialCluster, error) {
	data, err := regular.ReadFile(p.InitialCluster(), regular.MaxState)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, pki.ReadError(p.InitialCluster(), err)
	}
	var rec initialCluster
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, input.Errorf("%s: %v (it lists the members the cluster was first started with)", p.InitialCluster(), err)
	}
	return &rec, nil
}

// configMode: configs hold paths, not secrets, but live in 0700 bundles.
const configMode fs.FileMode = 0o644

// Permission bits checked on the PKI directory and the directories
// above what init writes.
const (
	// ownerReadSearch lets the owner list the directory and open what
	// is in it.
	ownerReadSearch fs.FileMode = 0o500
	// ownerWrite lets the owner create and rename entries.
	ownerWrite fs.FileMode = 0o200
)

// checkPKIDir rejects a PKI directory that is not a directory, or that we
// could read but not write, before anything is created.
func checkPKIDir(dir string) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // checkWritable looks at the parent.
	}
	if err != nil {
		return pki.ReadError(dir, err)
	}
	if !info.IsDir() {
		return input.Errorf("pki dir %s: not a directory", dir)
	}
	if info.Mode().Perm()&ownerReadSearch != ownerReadSearch {
		// Root ignores permission bits, but an operator who took the
		// bits away meant it.
		return input.Errorf("pki dir %s: not readable (mode %04o)", dir, info.Mode().Perm())
	}
	if _, err := os.ReadDir(dir); err != nil {
		return pki.ReadError(dir, err)
	}
	return nil
}

// checkWritable makes sure every directory the plan writes into (or its
// nearest existing ancestor) can be written, and that no file it writes
// is in the way (a directory, an immutable or append-only file), so a
// bad tree fails before the first write rather than halfway.
func checkWritable(pkiDir string, pl *plan) error {
	dirs := map[string]bool{pkiDir: true}
	var files []string
	for _, d := range pl.dirs {
		dirs[d] = true
	}
	for _, st := range pl.stores {
		dirs[st.dir] = true
		for _, f := range st.files {
			files = append(files, filepath.Join(st.dir, f.Name))
		}
	}
	for _, f := range pl.configs {
		dirs[filepath.Dir(f.Name)] = true
		files = append(files, f.Name)
	}
	var list []string
	for d := range dirs {
		list = append(list, d)
	}
	sort.Strings(list)
	for _, d := range list {
		existing := d
		for {
			info, err := os.Stat(existing)
			if err == nil {
				if !info.IsDir() {
					return input.Errorf("%s: not a directory", existing)
				}
				break
			}
			parent := filepath.Dir(existing)
			if parent == existing {
				break
			}
			existing = parent
		}
		info, err := os.Stat(existing)
		if err != nil {
			return pki.ReadError(existing, err)
		}
		if info.Mode().Perm()&ownerWrite == 0 || unix.Access(existing, unix.W_OK) != nil || immutable(existing) {
			what := "directory"
			if existing == pkiDir {
				what = "pki dir"
			}
			return input.Errorf("%s %s: read-only (mode %04o); nothing was written", what, existing, info.Mode().Perm())
		}
	}
	for _, f := range files {
		info, err := os.Lstat(f)
		if err != nil {
			continue // missing: created; unreadable: the directory check said
		}
		if info.IsDir() {
			return input.Errorf("%s: is a directory, where etcdpki writes a file; nothing was written", f)
		}
		// A FIFO or a device would block or misbehave when the old
		// contents are read for comparison; a link is one etcdpki made.
		if !info.Mode().IsRegular() && info.Mode()&fs.ModeSymlink == 0 {
			return input.Errorf("%s: is %s, where etcdpki writes a file; remove it; nothing was written", f, regular.Describe(info.Mode()))
		}
		if info.Mode().IsRegular() && immutable(f) {
			return input.Errorf("%s: immutable or append-only (chattr); nothing was written", f)
		}
	}
	return nil
}
