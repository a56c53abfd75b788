// Package regular reads files that must be regular files without ever
// blocking: opening a FIFO for reading waits for a writer forever, and a
// device may never end. A path holding anything but a regular file (after
// following links) is bad input, named in one line; nothing is opened
// that could block. Key and certificate files are read by the PKI's pair
// reader; this is for the other files etcdpki reads from the PKI
// directory and the command line (journal, member list, manifests).
package regular

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/etcdpki/etcdpki/internal/input"
)

// ReadFile reads path like os.ReadFile, but refuses a path that is not a
// regular file with an input error (exit 2) naming it and what it is.
// Errors from the file system keep their type, so errors.Is(err,
// fs.ErrNotExist) still works.
func ReadFile(path string) ([]byte, error) {
	// Stat before opening: open(2) of a FIFO blocks until a writer comes.
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Again on what was opened: the name may have been swapped meanwhile.
	if info, err = f.Stat(); err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	return io.ReadAll(f)
}

func notRegular(path string, m fs.FileMode) error {
	return input.Errorf("%s is %s, not a regular file", path, Describe(m))
}

// Describe names what a path that is not a regular file holds, for a
// message: "a directory", "a FIFO", "a symbolic link" (from Lstat)...
func Describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
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
