// Package regular is the one reader of every file etcdpki is handed or
// reads from the PKI directory. It never blocks and never reads without
// end: opening a FIFO for reading waits for a writer forever, a device
// (/dev/zero) never ends, and a huge file would be read whole into
// memory. A path holding anything but a regular file (after following
// links) is bad input, and so is a file larger than the cap its caller
// gives: each is named in one line, and nothing is opened that could
// block.
package regular

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/etcdpki/etcdpki/internal/input"
)

// The caps, one per kind of file. Every cap is far above any real file of
// its kind and far below what would hurt the machine: its job is to turn
// a wrong path (a disk image, a log, /dev/zero) into a one-line error
// instead of an out-of-memory kill.
const (
	// MaxPEM caps a certificate, key or CA bundle file: a certificate is
	// 1-2 KiB, an RSA-8192 key under 7 KiB, and a bundle of every public
	// root CA (the system trust store) about 220 KiB.
	MaxPEM = 1 << 20
	// MaxManifest caps a static Pod manifest, as cluster.MaxSpecSize
	// caps the spec: the
	// kube-apiserver's is a few KiB, and the API server refuses objects
	// over 1.5 MiB anyway.
	MaxManifest = 1 << 20
	// MaxState caps etcdpki's own small files: the journal, the member
	// list, etcd.env and etcd.conf.yml, the metrics textfile; each is
	// under a few KiB even for a large cluster.
	MaxState = 1 << 20
	// MaxCRL caps a CRL: about 40 bytes a revoked serial in DER, so
	// 16 MiB is some 300,000 revocations, where a cluster revokes a few a
	// year.
	MaxCRL = 16 << 20
	// MaxStored caps any file of a PKI store, whatever it holds: the
	// largest a store keeps is its CRL.
	MaxStored = MaxCRL
)

// Error is a path refused as bad input (exit 2): not a regular file, not
// a directory, or over its cap. Its text is the path, then the problem.
type Error struct {
	Path string
	// Problem says what is wrong, without the path: "is a FIFO, not a
	// regular file".
	Problem string
}

// Error is "PATH PROBLEM".
func (e *Error) Error() string { return e.Path + " " + e.Problem }

// ExitCode is input.ExitCode: the operator gave or left the wrong file.
func (e *Error) ExitCode() int { return input.ExitCode }

// PathCause is the problem alone, still bad input, for messages that
// name the file themselves (pathx.UnwrapPath).
func (e *Error) PathCause() error { return input.Errorf("%s", e.Problem) }

// ReadFile reads path like os.ReadFile, but refuses a path that is not a
// regular file, or is larger than max bytes, with an input error (exit
// 2), an *Error. Errors from the file system keep their type, so
// errors.Is(err, fs.ErrNotExist) still works.
func ReadFile(path string, max int64) ([]byte, error) {
	data, _, err := Read(path, max)
	return data, err
}

// Read is ReadFile that also returns the file's information as opened
// (its mode, for a caller that refuses a file others may read).
func Read(path string, max int64) ([]byte, fs.FileInfo, error) {
	// Stat before opening: open(2) of a FIFO blocks until a writer comes.
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := check(path, info, max); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// Again on what was opened: the name may have been swapped meanwhile.
	if info, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if err := check(path, info, max); err != nil {
		return nil, nil, err
	}
	// A file that grows while it is read is read up to one byte past the
	// cap and refused: never more than max+1 bytes in memory.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > max {
		return nil, nil, tooLarge(path, max)
	}
	return data, info, nil
}

// check refuses what is not a regular file, or is over the cap already.
func check(path string, info fs.FileInfo, max int64) error {
	if !info.Mode().IsRegular() {
		return notRegular(path, info.Mode())
	}
	if info.Size() > max {
		return tooLarge(path, max)
	}
	return nil
}

func notRegular(path string, m fs.FileMode) error {
	return &Error{Path: path, Problem: fmt.Sprintf("is %s, not a regular file", Describe(m))}
}

// Describe names what a path holds, for a message: "a directory", "a
// FIFO", "a symbolic link" (from Lstat)...
func Describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

func tooLarge(path string, max int64) error {
	return &Error{Path: path, Problem: fmt.Sprintf("is larger than %s, the most etcdpki reads for such a file: is it the right file?", Size(max))}
}

// Size says a cap for people: "1 MiB", "4 KiB".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadDir reads a directory like os.ReadDir, but refuses a path that is
// not a directory (after following links) without opening it: os.ReadDir
// of a FIFO blocks in open(2) until a writer comes. Errors are as
// ReadFile's.
func ReadDir(path string) ([]fs.DirEntry, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := notDir(path, info); err != nil {
		return nil, err
	}
	// O_DIRECTORY: a name swapped for anything else since the Stat fails
	// to open instead of blocking.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: path, Err: err}
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// Check refuses, without opening it, a path that ReadFile would refuse
// for its type or size: for a command that reads the file later, or
// writes it, and must say so before it changes anything. A path that
// does not exist, or cannot be looked at, is left to the reader or writer
// to report (nil).
func Check(path string, max int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	return check(path, info, max)
}

// CheckDir refuses a path that exists but is not a directory (after
// following links), without opening it; nil when it is a directory or is
// not there (to be made).
func CheckDir(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	return notDir(path, info)
}

func notDir(path string, info fs.FileInfo) error {
	if info.IsDir() {
		return nil
	}
	return &Error{Path: path, Problem: fmt.Sprintf("is %s, not a directory", Describe(info.Mode()))}
}
