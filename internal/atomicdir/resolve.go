package atomicdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// readSetAttempts bounds how often ReadSet resolves the store again when
// the version it resolved was removed before it finished reading: that
// takes two updates between its resolve and its read, so a few attempts
// are plenty even against a renew loop.
const readSetAttempts = 10

// ReadSet reads names from dir as one set. Every name that is a public
// link into the store is read from one version, resolved once, so that a
// certificate and its key read while another process switches the store
// come from the same version: reading the two public links one after the
// other could pair a new certificate with an old key. A name that is not
// a link into the store (a plain file another tool left, a file an
// operator put there) is read where it is. A name whose link a crash left
// missing is read from the version the next update repairs the store to,
// as Read does.
//
// It is read-only and takes no lock. errs[i] is nil or the error
// regular.ReadFile gives for that name (fs.ErrNotExist when it is absent;
// an input error for a FIFO, a device or a file over regular.MaxStored).
func ReadSet(dir string, names ...string) (data [][]byte, errs []error) {
	for attempt := 1; ; attempt++ {
		data, errs, vanished := readSetOnce(dir, names)
		if !vanished || attempt == readSetAttempts {
			return data, errs
		}
	}
}

// readSetOnce is one attempt of ReadSet; vanished reports that a version
// it resolved was removed under it. Each name's store is the one its
// public link points into (a host directory may hold several bundles'
// stores); each store is resolved once, so every name of one store is
// read from the same version.
func readSetOnce(dir string, names []string) (data [][]byte, errs []error, vanished bool) {
	data, errs = make([][]byte, len(names)), make([]error, len(names))
	resolved := map[string]string{} // store directory -> version in effect
	version := func(sd string) string {
		if ver, ok := resolved[sd]; ok {
			return ver
		}
		ver := ""
		if e, _, err := effective(sd); err == nil && e != "" {
			ver = filepath.Join(sd, e)
		}
		resolved[sd] = ver
		return ver
	}
	for i, n := range names {
		public := filepath.Join(dir, n)
		if sd := storeOf(dir, n); sd != "" {
			if ver := version(sd); ver != "" {
				d, err := regular.ReadFile(filepath.Join(ver, n), regular.MaxStored)
				if err == nil {
					data[i] = d
					continue
				}
				if missing(ver) {
					return nil, nil, true
				}
			}
		}
		data[i], errs[i] = regular.ReadFile(public, regular.MaxStored)
	}
	return data, errs, false
}

// storeOf is the directory holding the versions that dir/name shows: the
// store its public link points into, or, when a crash left the link
// missing, the store the next update repairs it in. "" when name is no
// store's (a plain file, a link somewhere else).
func storeOf(dir, name string) string {
	public := filepath.Join(dir, name)
	target, err := os.Readlink(public)
	if err != nil {
		if !missing(public) {
			return ""
		}
		if v, err := find(dir); err == nil && v != nil {
			return v.sd
		}
		return ""
	}
	sd := filepath.Dir(filepath.Dir(target))
	if filepath.IsAbs(target) || filepath.Base(target) != name || filepath.Base(filepath.Dir(target)) != DataLink ||
		sd != "." && !isStoreDirName(sd) {
		return ""
	}
	return filepath.Join(dir, sd)
}

// missing reports whether nothing, not even a dangling link, is at path.
func missing(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// ReadTogether reads files that a reader uses together, a certificate and
// its key, by the paths that reader is given. Files that are public names
// of one store come from one version, as with ReadSet; files anywhere
// else are read where they are. Unlike ReadSet, a missing path is missing
// (fs.ErrNotExist), as it is for a TLS library opening it: verify and the
// probes judge what etcd and its clients would load.
func ReadTogether(paths ...string) (data [][]byte, errs []error) {
	if len(paths) == 0 {
		return nil, nil
	}
	dir := filepath.Dir(paths[0])
	names := make([]string, len(paths))
	for i, p := range paths {
		if filepath.Dir(p) != dir {
			return readEach(paths)
		}
		names[i] = filepath.Base(p)
	}
	data, errs = ReadSet(dir, names...)
	for i, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			data[i], errs[i] = nil, err
		}
	}
	return data, errs
}

func readEach(paths []string) (data [][]byte, errs []error) {
	data, errs = make([][]byte, len(paths)), make([]error, len(paths))
	for i, p := range paths {
		data[i], errs[i] = regular.ReadFile(p, regular.MaxStored)
	}
	return data, errs
}
