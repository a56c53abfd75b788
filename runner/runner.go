package runner

import (
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/pki"
)

// New builds the run over inv, the spec cmd expanded once: every step
// reads the spec, names and paths from r.Inv.
func New(inv *pki.Inventory, cfg Config, log *Logger) *Runner {
	return &Runner{Cfg: cfg, Log: log, Inv: inv, Etcd: &Cluster{Spec: inv.Spec, paths: inv.Paths, inv: inv}}
}

// Runner is what every operation runs on: its configuration, the
// stamped log, the expanded spec, the etcd client and the journal.
type Runner struct {
	Cfg     Config
	Log     *Logger
	Inv     *pki.Inventory
	Etcd    *Cluster
	Journal *State
}

// Begin takes the PKI directory's lock (a dry run changes nothing and
// takes none), loads the journal into r.Journal and moves stores of the
// layout before named stores into theirs (issue.MigrateLayout). The leaf rotation and the
// CA rotation start alike; release drops the lock.
func (r *Runner) Begin() (release func(), err error) {
	release = func() {}
	if err := checkPKIExists(r.Inv.Spec.PKIDir); err != nil {
		return nil, err
	}
	if !r.Cfg.DryRun {
		l, err := Lock(r.Inv.Spec.PKIDir)
		if err != nil {
			return nil, err
		}
		release = l.Release
	}
	if r.Journal, err = LoadState(r.Inv.Spec.PKIDir); err != nil {
		release()
		return nil, err
	}
	if err := r.migrateLayout(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// Locked is the run every journaled operation shares (member add and
// remove, certs revoke): Begin (the lock, the journal, the layout), fn on
// a fresh result, the lock released; it returns the result and how long
// fn took, and no result when the lock or the journal could not be taken
// (fn did not run).
func Locked[R any](r *Runner, fn func(res *R) error) (*R, time.Duration, error) {
	release, err := r.Begin()
	if err != nil {
		return nil, 0, err
	}
	defer release()
	res := new(R)
	start := time.Now()
	err = fn(res)
	return res, time.Since(start), err
}

func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

// Round rounds d for a progress line: to 100 ms above a second, to the
// millisecond below.
func Round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
