package rotate

import (
	"github.com/etcdpki/etcdpki/internal/pkilock"
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
