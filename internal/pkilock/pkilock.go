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
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
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

// Release drops the lock. A nil Held is released already.
func (h *Held) Release() {
	if h == nil || h.f == nil {
		return
	}
	_ = syscall.Flock(int(h.f.Fd()), syscall.LOCK_UN)
	h.f.Close()
	h.f = nil
}
