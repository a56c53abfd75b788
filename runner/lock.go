package runner

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pkilock"
	"github.com/etcdpki/etcdpki/issue"
)

// LockFile is the lock's name inside the PKI directory. Every writer of
// the PKI directory (init, certs renew, issue, rotate) takes it.
const LockFile = pkilock.File

// ErrLocked means another etcdpki run holds the PKI directory's lock.
var ErrLocked = pkilock.ErrLocked

// Lock takes the PKI directory's lock, as Run does, for tools that must
// not change the PKI while a rotation runs. The kernel drops it when the
// holder dies, even by kill -9, so a crashed run never wedges cron. It is
// taken without waiting and fails with ErrLocked at once when another
// holder has it: a cron run that finds another run still rolling members
// must not queue behind it and then roll again.
func Lock(pki string) (*pkilock.Held, error) { return pkilock.Acquire(pki) }

// migrateLayout moves the PKI's stores of the layout before named stores
// into theirs, right after the lock is taken (a dry run changes nothing).
// Same bytes, new layout: nothing to deploy or prove for it.
func (r *Runner) migrateLayout() error {
	if r.Cfg.DryRun {
		return nil
	}
	moved, err := issue.MigrateLayout(r.Inv)
	if err != nil {
		return err
	}
	if len(moved) > 0 {
		r.Log.Step(StepLayout, "").Done("moved %d stores to the named-store layout (same bytes): %s", len(moved), strings.Join(moved, ", "))
	}
	return nil
}

// checkPKIExists refuses a PKI directory that does not exist before the
// lock is opened in it: the lock's error would name a lock file, not the
// mistake.
func checkPKIExists(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return input.Errorf("there is no PKI at %s: run etcdpki init first", dir)
	}
	return nil
}
