// Package pathx owns the two path helpers every layer needs for messages:
// one way to make a path absolute for printing, and one way to strip
// os.PathError's "op path:" prefix when the message already names the
// file.
package pathx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Abs makes p absolute for printing, keeping p if that fails.
func Abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// UnwrapPath returns the cause of an *os.PathError ("no such file or
// directory"), for messages that name the file themselves; any other
// error is returned as is. An error that names its path and can say its
// cause without it (pathCauser) gives that cause.
func UnwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	if pc, ok := errors.AsType[pathCauser](err); ok {
		return pc.PathCause()
	}
	return err
}

// pathCauser is an error naming a path that can say its cause without
// it: internal/regular's refusal of a FIFO, a device or a huge file.
type pathCauser interface {
	error
	PathCause() error
}

// Resolve makes p absolute and resolves the symbolic links in the part of
// it that exists: where a write under p would really land.
func Resolve(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(append([]string{p}, rest...)...), nil
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// Inside reports whether p, resolved, lies inside root, resolved (root
// itself counts), and where p really leads.
func Inside(root, p string) (bool, string, error) {
	rr, err := Resolve(root)
	if err != nil {
		return false, "", err
	}
	rp, err := Resolve(p)
	if err != nil {
		return false, "", err
	}
	rel, err := filepath.Rel(rr, rp)
	return err == nil && filepath.IsLocal(rel) || rel == ".", rp, nil
}
