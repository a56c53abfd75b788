package issue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/pkilock"
)

// firstRun is a run that may make the PKI directory: the lock lives in it,
// so a first run makes it before taking the lock, and removes it again,
// lock file and all, if the run fails.
type firstRun struct {
	dir   string
	batch atomicdir.Batch
}

// lockNewPKIDir makes dir when it does not exist yet and takes its lock.
// When the lock is held by another run, that run works in the directory:
// it is left be.
func lockNewPKIDir(dir string, o Options) (*firstRun, *pkilock.Held, error) {
	fr := &firstRun{dir: dir}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := fr.batch.Dir(dir); err != nil {
			fr.batch.Abort()
			return nil, nil, err
		}
	}
	held, err := o.lock(dir)
	if err != nil {
		return nil, nil, err
	}
	return fr, held, nil
}

// fail undoes the PKI directory if this run made it, and returns err.
func (fr *firstRun) fail(err error) (*Result, error) {
	if fr.batch.Created(fr.dir) {
		os.Remove(filepath.Join(fr.dir, pkilock.File))
	}
	fr.batch.Abort()
	return nil, err
}

// commit writes pl as one batch (plan.write) into res and keeps the PKI
// directory; a failure takes back the batch, and the directory if this
// run made it (fail).
func (fr *firstRun) commit(pl *plan, res *Result) error {
	var b atomicdir.Batch
	written, err := pl.write(&b)
	if err != nil {
		b.Abort()
		_, err = fr.fail(err)
		return err
	}
	res.Written = append(res.Written, written...)
	fr.keep()
	return nil
}

// keep keeps the PKI directory: the run succeeded.
func (fr *firstRun) keep() { _ = fr.batch.Commit() }
