// Package pkilock keeps writers of one PKI directory apart: etcdpki init,
// certs renew, issue and rotate each take the directory's lock before
// their first write, so two of them can never interleave (two inits
// minting two CAs, a renewal swapping files under a rotation).
package pkilock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// File is the lock's name inside the PKI directory. It keeps the name it
// had when only rotate took it, so that cron jobs and scripts that look
// for it (flock -n PKI/rotate.lock) keep working.
const File = "rotate.lock"

// mode: only the owner needs to open the lock.
const mode fs.FileMode = 0o600

// ErrLocked means another etcdpki run holds the PKI directory's lock.
var ErrLocked = errors.New("another etcdpki run (init, certs renew, issue or rotate) holds the PKI directory's lock")

// Held is a taken lock.
type Held struct{ f *os.File }

// Acquire takes the lock of the PKI directory pki, which must exist. It
// does not wait: a second writer exits at once (exit code 1) naming the
// lock, instead of queueing behind a rotation and then acting on files
// that changed under it. An operator re-runs it when the first is done.
//
// The lock is an flock(2), which the kernel drops when its holder dies,
// even by kill -9, so a crashed run never wedges the next. The file's
// bytes never change, so a run that only takes the lock changes nothing.
func Acquire(pki string) (*Held, error) {
	path := filepath.Join(pki, File)
	// Only a regular file is a lock: opening a FIFO blocks until a writer
	// comes, a device may do anything, and a link could make the lock
	// another file's. Checked before opening, opened without following a
	// link or blocking, and checked again on what was opened, in case
	// the name was swapped in between.
	if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
		return nil, notRegular(path, info.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, mode)
	if err != nil {
		if info, lerr := os.Lstat(path); lerr == nil && !info.Mode().IsRegular() {
			return nil, notRegular(path, info.Mode())
		}
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("open lock %s: %w", path, err)
		}
		return nil, notRegular(path, info.Mode())
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: it holds %s; try again when it has finished", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Held{f: f}, nil
}

// notRegular refuses a lock path holding something other than a regular
// file: bad input (exit 2), for the operator to move away.
func notRegular(path string, m fs.FileMode) error {
	return input.Errorf("lock %s is %s, not a regular file; remove it (etcdpki creates the lock itself)", path, regular.Describe(m))
}

// Release drops the lock. A nil Held is released already.
func (h *Held) Release() {
	if h == nil || h.f == nil {
		return
	}
	_ = syscall.Flock(int(h.f.Fd()), syscall.LOCK_UN)
	h.f.Close()
	h.f = nil
}
