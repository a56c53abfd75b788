package issue

import (
	"errors"
	"io/fs"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// loadOrCreateCA loads PKI/etcd/ca.{crt,key}, or creates a CA in memory
// when neither exists (fresh, when set, is the one to use then). One
// without the other is an error: never guess. The files are read as the
// next write will see them, so a crash that left the CA's version
// complete but a link missing reads as the CA, not as no CA.
func loadOrCreateCA(s *cluster.Spec, p pki.Paths, now time.Time, fresh *ca.CA) (*ca.CA, bool, error) {
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	certPEM, certErr := atomicdir.Read(p.CADir(), "ca.crt")
	keyPEM, keyErr := atomicdir.Read(p.CADir(), "ca.key")
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if fresh != nil {
			return fresh, true, nil
		}
		a, err := ca.Create(s.CA, now)
		return a, true, err
	case certErr != nil:
		return nil, false, readError(p.CACert(), certErr)
	case keyErr != nil:
		return nil, false, readError(p.CAKey(), keyErr)
	}
	a, err := ca.ParseFiles(certPEM, keyPEM, p.CACert(), p.CAKey())
	if err != nil {
		return nil, false, err
	}
	if now.After(a.Cert.NotAfter) {
		return nil, false, inputError("%s: CA expired on %s; a new CA must be rolled out in stages", p.CACert(), a.Cert.NotAfter.Format(time.DateOnly))
	}
	return a, false, nil
}

// LoadCA loads the PKI directory's CA for signing.
func LoadCA(dir string) (*ca.CA, error) {
	p := pki.Paths{PKI: dir}
	certPEM, err := atomicdir.Read(p.CADir(), "ca.crt")
	if err != nil {
		return nil, readError(p.CACert(), err)
	}
	keyPEM, err := atomicdir.Read(p.CADir(), "ca.key")
	if err != nil {
		return nil, readError(p.CAKey(), err)
	}
	return ca.ParseFiles(certPEM, keyPEM, p.CACert(), p.CAKey())
}

func readError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return inputError("%s: does not exist (run etcdpki init first)", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return inputError("%s: cannot read: %v", path, err)
}
