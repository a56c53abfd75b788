package issue

import (
	"bytes"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// InstallCABundle replaces the bundle's ca.crt with caPEM (the trust
// ConfigMap's: one CA, or during a CA rotation's trust-both the old and
// the new) in one rename of its store, as InstallCRL does. It refuses,
// changing nothing, data that is not CA certificates only, and a bundle
// under which one of the host's own pairs (targets) would no longer
// verify: a member restarted with it could not serve or dial its peers.
// The same bytes change nothing; it reports whether it changed the file.
func InstallCABundle(b pki.Bundle, targets []pki.Target, caPEM []byte) (bool, error) {
	cas, err := certx.ParseCertificates(caPEM)
	if err != nil || len(cas) == 0 {
		return false, input.Errorf("new %s for %s: no certificate in it (%v)", pki.CAFile, b.Owner, err)
	}
	for _, c := range cas {
		if !c.IsCA {
			return false, input.Errorf("new %s for %s: %q is not a CA certificate", pki.CAFile, b.Owner, c.Subject.CommonName)
		}
	}
	if bytes.Contains(caPEM, []byte("PRIVATE KEY")) {
		return false, input.Errorf("new %s for %s: holds a private key; refusing it", pki.CAFile, b.Owner)
	}
	if old, err := pki.ReadStored(b.CADir, pki.CAFile); err == nil && bytes.Equal(old, caPEM) {
		return false, nil
	}
	for _, t := range targets {
		certPEM, keyPEM, err := pki.ReadTargetPair(t)
		if err != nil || certPEM == nil {
			continue // nothing on disk to keep working yet
		}
		if _, err := pki.CheckIssued(t, cas, certPEM, keyPEM, time.Now()); err != nil {
			return false, input.Errorf("new %s for %s: the host's %s would not verify under it: %v; refusing it", pki.CAFile, b.Owner, t.ID, err)
		}
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(b.CAStore(), atomicdir.File{Name: pki.CAFile, Data: caPEM, Mode: atomicdir.CertMode})
	return true, commitHost(b.Root, pl)
}
