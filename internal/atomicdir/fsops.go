package atomicdir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

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
