package issue

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// loadOrCreateCA loads PKI/etcd/ca.crt and its key (ca.key, or the key in
// a token that ca.key.uri names), or creates a CA in memory when neither
// exists (fresh, when set, is the one to use then): for a token key the
// key is made in the token, or the one already under the spec's label is
// used, which is how a run killed before ca.crt was written is finished.
// A certificate without a key, or the other way round, is an error:
// never guess. The files are read as the next write will see them, so a
// crash that left the CA's version complete but a link missing reads as
// the CA, not as no CA.
func loadOrCreateCA(s *cluster.Spec, p pki.Paths, now time.Time, fresh *ca.CA) (*ca.CA, bool, error) {
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	certPEM, certErr := atomicdir.Read(p.CADir(), "ca.crt")
	keyPEM, keyErr := atomicdir.Read(p.CADir(), ca.KeyFile)
	uriData, uriErr := atomicdir.Read(p.CADir(), ca.KeyURIFile)
	uriPath := filepath.Join(p.CADir(), ca.KeyURIFile)
	noKey := errors.Is(keyErr, fs.ErrNotExist) && errors.Is(uriErr, fs.ErrNotExist)
	if tok := s.CA.Token; tok != nil {
		switch {
		case keyErr == nil:
			return nil, false, inputError("%s: the spec puts the CA key in a token (%s) but this PKI's CA key is a file; etcdpki does not move a CA key into a token: import it with the token's tools, then remove the file", p.CAKey(), tok.Where())
		case uriErr == nil:
			if u, err := cluster.ParsePKCS11URI(strings.TrimSpace(string(uriData)), false); err == nil && !tok.SameKey(u) {
				return nil, false, inputError("%s: the CA key is %s, the spec says %s", uriPath, u.Where(), tok.Where())
			}
		}
	}
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && noKey:
		if fresh != nil {
			return fresh, true, nil
		}
		a, err := ca.Create(s.CA, now)
		return a, true, err
	case certErr != nil:
		return nil, false, readError(p.CACert(), certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, readError(p.CAKey(), keyErr)
	case uriErr != nil && !errors.Is(uriErr, fs.ErrNotExist):
		return nil, false, readError(uriPath, uriErr)
	case noKey && s.CA.Token == nil:
		return nil, false, readError(p.CAKey(), keyErr)
	}
	var a *ca.CA
	var err error
	if s.CA.Token != nil {
		// The spec's URI (its PIN source as given now); with no
		// ca.key.uri yet, a key the operator put in the token for this
		// ca.crt is adopted.
		a, err = ca.OpenToken(certPEM, p.CACert(), s.CA.Token)
	} else {
		a, err = ca.ParseStore(certPEM, keyPEM, uriData, p.CACert(), p.CAKey(), uriPath)
	}
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
	a, err := loadCAStore(p.CADir())
	if err == nil && a == nil {
		return nil, readError(p.CACert(), fs.ErrNotExist)
	}
	return a, err
}

// loadCAStore loads the CA of a CA store (PKI/etcd, PKI/etcd-next): its
// ca.crt and its key, the file ca.key or the token key ca.key.uri names.
// nil when the store holds none of them.
func loadCAStore(dir string) (*ca.CA, error) {
	certPath, keyPath, uriPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, ca.KeyFile), filepath.Join(dir, ca.KeyURIFile)
	certPEM, certErr := atomicdir.Read(dir, "ca.crt")
	keyPEM, keyErr := atomicdir.Read(dir, ca.KeyFile)
	uriData, uriErr := atomicdir.Read(dir, ca.KeyURIFile)
	noKey := errors.Is(keyErr, fs.ErrNotExist) && errors.Is(uriErr, fs.ErrNotExist)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && noKey:
		return nil, nil
	case certErr != nil:
		return nil, readError(certPath, certErr)
	case keyErr != nil && (uriErr != nil || !errors.Is(keyErr, fs.ErrNotExist)):
		return nil, readError(keyPath, keyErr)
	case uriErr != nil && !errors.Is(uriErr, fs.ErrNotExist):
		return nil, readError(uriPath, uriErr)
	}
	return ca.ParseStore(certPEM, keyPEM, uriData, certPath, keyPath, uriPath)
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
