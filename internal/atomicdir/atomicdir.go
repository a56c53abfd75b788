// Package atomicdir keeps a directory of certificates and keys whose
// contents switch all at once.
//
// etcd (and kube-apiserver's etcd client) open the certificate file and the
// key file separately at every TLS handshake, so renaming a new cert and
// then a new key into place lets a handshake in between pair a new cert
// with an old key. Instead, as Kubernetes' secret volumes and kubelet's
// certificate store do, the real files live in a versioned directory and
// the public names are symlinks through one "..data" link. Each store
// keeps its versions and its "..data" in a directory of its own, named
// after the store, so that the stores of several bundles can share one
// directory (see Store):
//
//	dir/server.crt                 -> ..etcd-node-1.store/..data/server.crt
//	dir/..etcd-node-1.store/..data -> ..2026_11_26_06_45_12.123456789
//
// A new version is written and fsynced in full, then "..data" is replaced
// with a single rename. A crash at any point leaves either the old or the
// new version in effect, never a mix.
//
// The files, by concern: atomicdir.go the entry points (Read, Current,
// Update, WriteFile); layout.go the version layout (version names, the
// link naming the one in effect, pruning); batch.go the batch that puts
// several stores in effect together and takes them back on failure;
// repair.go the repair of what a crash left and the migration of the
// layout before named stores and of plain files; fsops.go and hook.go the file-system steps a crash can fall
// between, each through the test hook; newdir.go a new directory in one
// rename; drop.go dropping old versions and stores on purpose.
package atomicdir

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/regular"
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
// or DataLink naming a version that is gone, from the version the next
// update repairs the store to (see Update and Resolve). It changes
// nothing, so a run can plan, and refuse bad input, before it writes
// anything.
func Read(dir, name string) ([]byte, error) {
	data, err := regular.ReadFile(filepath.Join(dir, name), regular.MaxStored)
	if !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	ver, verr := Resolve(dir)
	if verr != nil || ver == "" {
		return nil, err
	}
	if data, verr := regular.ReadFile(filepath.Join(ver, name), regular.MaxStored); verr == nil {
		return data, nil
	}
	return nil, err
}

// Current returns the path of the version directory in effect in dir's
// store (see Resolve for which store), or "" when dir has no versions
// yet.
func Current(dir string) (string, error) {
	v, err := find(dir)
	if err != nil || v == nil {
		return "", err
	}
	return current(v.sd)
}

// Update makes files part of the store's contents. Files already in the
// store and not named in files are carried over unchanged. validate, if
// not nil, sees the complete new contents (name to bytes) before anything
// is switched, so a cert/key pair check can veto a mismatched pair. When
// every file is already present with the same bytes, nothing is written;
// modes are still enforced.
//
// Before anything else, Update repairs what a crash (kill -9, power loss)
// of an earlier update can leave in the store: temporary files and links,
// a version written but never switched to, public links not yet created,
// and DataLink naming a version that is gone (it then falls back to the
// version before, which was complete when it was in effect). It then
// migrates what the store's directory holds from before named stores (a
// "..data" link and versions in the directory itself) or from another
// tool (plain files), with the same bytes, into the store (see
// migrateLegacy and migrateFlat). Callers hold the PKI directory's lock,
// so nobody else is writing those files.
func Update(st Store, files []File, validate func(map[string][]byte) error) (Result, error) {
	var b Batch
	if _, err := b.Update(st, files, validate); err != nil {
		b.Abort()
		return Result{}, err
	}
	if err := b.Commit(); err != nil {
		return Result{}, err
	}
	return b.Results()[0], nil
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
