package issue

import (
	"bytes"
	"fmt"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// The agent's writes: on its own host, into the bundle deployed there,
// a pair whose key it made in memory and a CRL the cluster published.
// They go through the same plan and atomic stores as every other write
// of issue, so a host's bundle keeps the layout, modes and crash
// guarantees of the PKI directory's copy. Callers keep writers of one
// host directory apart (the agent is one process and serialises its
// writes).

// InstallPair switches t's pair to certPEM and keyPEM in one rename of
// its store, keeping the store's other files (ca.crt, the bundle's other
// pairs, crl.der); the key is written 0600, in that switch and nowhere
// else. It refuses, changing nothing, a certificate that is not for the
// key, does not chain to the bundle's ca.crt for t's usage, or whose
// subject or SANs are not t's (pki.CheckIssued).
func InstallPair(t pki.Target, certPEM, keyPEM []byte) error {
	cas, err := pki.BundleCAs(t.CADir)
	if err != nil {
		return err
	}
	if _, err := pki.CheckIssued(t, cas, certPEM, keyPEM, time.Now()); err != nil {
		return err
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(t.Store(), atomicdir.File{Name: t.CertName, Data: certPEM, Mode: atomicdir.CertMode})
	pl.add(t.Store(), atomicdir.File{Name: t.KeyName, Data: keyPEM, Mode: atomicdir.KeyMode})
	return commitHost(t.Dir, pl)
}

// InstallCRL replaces the bundle's crl.der with crlDER in one rename of
// its store, after checking that it parses as etcd parses it, that a CA
// of the bundle's ca.crt signed it, and that its CRL number is not lower
// than the installed one's, nor equal with other contents: a CRL never
// goes back (RFC 5280 5.2.3), so an old copy replayed from anywhere, or a
// CRL signed again from one, cannot take back a revocation. The same
// bytes change nothing. An installed CRL that does not parse is replaced.
func InstallCRL(b pki.Bundle, crlDER []byte) error {
	l, err := pki.ParseCRL(crlDER)
	if err != nil {
		return input.Errorf("new %s for %s: %v", pki.CRLFile, b.Owner, err)
	}
	cas, err := pki.BundleCAs(b.CADir)
	if err != nil {
		return err
	}
	signed := false
	for _, c := range cas {
		signed = signed || l.CheckSignatureFrom(c) == nil
	}
	if !signed {
		return input.Errorf("new %s for %s: not signed by a CA in %s; refusing it", pki.CRLFile, b.Owner, b.CAPath())
	}
	if old, err := pki.ReadStored(b.CADir, pki.CRLFile); err == nil {
		ol, err := pki.ParseCRL(old)
		switch {
		case err != nil || ol.Number == nil:
		case l.Number == nil || l.Number.Cmp(ol.Number) < 0:
			return input.Errorf("new %s for %s: CRL number %v is lower than the installed %v; a CRL never goes back, refusing it", pki.CRLFile, b.Owner, l.Number, ol.Number)
		case l.Number.Cmp(ol.Number) == 0 && !bytes.Equal(old, crlDER):
			return input.Errorf("new %s for %s: CRL number %v is the installed CRL's number, with other contents (every signer counts up: it was signed from an older CRL); refusing it", pki.CRLFile, b.Owner, l.Number)
		}
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(b.CAStore(), atomicdir.File{Name: pki.CRLFile, Data: crlDER, Mode: atomicdir.CertMode})
	return commitHost(b.Root, pl)
}

// commitHost writes a host's plan as one batch, after checking that it
// can be written at all.
func commitHost(root string, pl *plan) error {
	if err := checkWritable(root, pl); err != nil {
		return err
	}
	var b atomicdir.Batch
	if _, err := pl.write(&b); err != nil {
		b.Abort()
		return fmt.Errorf("install: %w", err)
	}
	return nil
}
