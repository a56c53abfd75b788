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
)

// DataLink is the symlink that names the current version.
const DataLink = "..data"

const versionPrefix = ".."

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

func isLinkToData(dir, name string) bool {
	target, err := os.Readlink(filepath.Join(dir, name))
	return err == nil && target == filepath.Join(DataLink, name)
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
