package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the lock's name inside the PKI directory.
const LockFile = "rotate.lock"

// lockMode: only the owner needs to open the lock.
const lockMode fs.FileMode = 0o600

// ErrLocked means another rotate run holds the PKI directory's lock.
var ErrLocked = errors.New("another etcdpki rotate is running")

// Lock takes the PKI directory's rotation lock, as Run does, for tools
// that must not change the PKI while a rotation runs. It fails with
// ErrLocked at once when another holder has it.
func Lock(pki string) (*Held, error) {
	l, err := acquire(pki)
	if err != nil {
		return nil, err
	}
	return &Held{l: l}, nil
}

// Held is a taken rotation lock.
type Held struct{ l *lock }

// Release drops the lock.
func (h *Held) Release() { h.l.release() }

// lock is an flock(2) on PKI/rotate.lock. The kernel drops it when the
// holder dies, even by kill -9, so a crashed run never wedges cron.
type lock struct{ f *os.File }

// acquire takes the lock without waiting: a cron run that finds another
// run still rolling members must not queue behind it and then roll again.
func acquire(pki string) (*lock, error) {
	path := filepath.Join(pki, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, lockMode)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: it holds %s", ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only for the message above; the flock is the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lock{f: f}, nil
}

func (l *lock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
