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
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// loadOrCreateCA loads PKI/etcd/ca.{crt,key} (or ca.crt and the key in a
// token that ca.key.uri names), or creates a CA in memory when neither
// exists (fresh, when set, is the one to use then); for a token key the
// key is made in the token, or the one already under the spec's label is
// used, which is how a run killed before ca.crt was written is finished.
// One
// without the other is an error: never guess. The files are read as the
// next write will see them, so a crash that left the CA's version
// complete but a link missing reads as the CA, not as no CA.
func loadOrCreateCA(inv *pki.Inventory, now time.Time, fresh *ca.CA) (*ca.CA, bool, error) {
	s, p := inv.Spec, inv.Paths
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	if s.CA.Token != nil {
		// The CA key in a token: the spec must name the PKI's key, and a
		// ca.crt without ca.key.uri adopts the key the operator put in
		// the token for it.
		a, err := tokenCA(s.CA.Token, p)
		if err != nil || a != nil {
			if err == nil && now.After(a.Cert.NotAfter) {
				return nil, false, input.Errorf("%s: CA expired on %s; a new CA must be rolled out in stages", p.CACert(), a.Cert.NotAfter.Format(time.DateOnly))
			}
			return a, false, err
		}
	}
	a, err := pki.LoadCAIfAny(p)
	switch {
	case err != nil:
		return nil, false, err
	case a == nil && fresh != nil:
		return fresh, true, nil
	case a == nil:
		a, err := ca.Create(s.CA, now)
		return a, true, err
	}
	if now.After(a.Cert.NotAfter) {
		return nil, false, input.Errorf("%s: CA expired on %s; a new CA must be rolled out in stages", p.CACert(), a.Cert.NotAfter.Format(time.DateOnly))
	}
	return a, false, nil
}

// refuseDuringCARotation keeps init and certs renew from writing a bundle
// with the old CA alone in the middle of a CA rotation, which would undo
// its trust-both stage; etcdpki ca rotate re-issues from the right CA.
func refuseDuringCARotation(p pki.Paths, what string) error {
	next, err := pki.LoadNextCA(p)
	if err != nil || next == nil {
		return err
	}
	return input.Errorf("%s: a CA rotation is in progress (%s holds the next CA); finish it with etcdpki ca rotate first", what, p.NextCADir())
}

// tokenCA opens the PKI's CA with the spec's token URI (the PIN's source
// as given now): nil when there is no ca.crt yet. A PKI whose CA key is a
// file, or whose ca.key.uri names another key, is an input error.
func tokenCA(tok *cluster.PKCS11URI, p pki.Paths) (*ca.CA, error) {
	uriPath := filepath.Join(p.CADir(), ca.KeyURIFile)
	certPEM, certErr := atomicdir.Read(p.CADir(), pki.CAFile)
	_, keyErr := atomicdir.Read(p.CADir(), pki.CAKeyFile)
	uriData, uriErr := atomicdir.Read(p.CADir(), ca.KeyURIFile)
	switch {
	case keyErr == nil:
		return nil, input.Errorf("%s: the spec puts the CA key in a token (%s) but this PKI's CA key is a file; etcdpki does not move a CA key into a token: import it with the token's tools, then remove the file", p.CAKey(), tok.Where())
	case uriErr == nil:
		if u, err := cluster.ParsePKCS11URI(strings.TrimSpace(string(uriData)), false); err == nil && !tok.SameKey(u) {
			return nil, input.Errorf("%s: the CA key is %s, the spec says %s", uriPath, u.Where(), tok.Where())
		}
	case !errors.Is(uriErr, fs.ErrNotExist):
		return nil, pki.ReadError(uriPath, uriErr)
	}
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(uriErr, fs.ErrNotExist):
		return nil, nil
	case certErr != nil:
		return nil, pki.ReadError(p.CACert(), certErr)
	}
	return ca.OpenToken(certPEM, p.CACert(), tok)
}
