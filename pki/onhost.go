package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
)

// OnHost is owner's bundle and certificates as they lie on the owner's
// host, where the bundle was deployed into dir (a node's
// /etc/kubernetes/pki, a client's directory): every path re-rooted from
// the PKI directory's copy to dir with Bundle.OnHost, so that the agent
// running there reads its pairs through this read model (ReadTargetPair,
// BundleCAs) exactly as the admin host reads the PKI directory. A target
// has no Held path on a host: adopt's records stay in the PKI directory.
// An owner the spec does not have, or one without a bundle of its own
// (the healthcheck client lives in every node's), is an input error.
func (inv *Inventory) OnHost(owner, dir string) (Bundle, []Target, error) {
	b, ok := inv.Bundle(owner)
	if !ok {
		return Bundle{}, nil, input.Errorf("%q: the spec of cluster %q has no node or client of that name with a bundle of its own (%s)", owner, inv.Spec.Name, inv.owners())
	}
	if dir == "" {
		return Bundle{}, nil, input.Errorf("%s: no host directory given", owner)
	}
	host := Bundle{Owner: b.Owner, Node: b.Node, Root: dir, CADir: b.OnHost(dir, b.CADir), Targets: slices.Clone(b.Targets)}
	var ts []Target
	for _, id := range b.Targets {
		t, _ := inv.Target(id)
		t.Dir, t.CADir, t.Held = b.OnHost(dir, t.Dir), b.OnHost(dir, t.CADir), ""
		ts = append(ts, t)
	}
	return host, ts, nil
}

// owners lists the names OnHost takes, for its error.
func (inv *Inventory) owners() string {
	var nodes, clients []string
	for _, b := range inv.Bundles {
		if b.Node {
			nodes = append(nodes, b.Owner)
		} else {
			clients = append(clients, b.Owner)
		}
	}
	return fmt.Sprintf("nodes %v, clients %v", nodes, clients)
}

// CheckIssued checks a pair made for t before it goes into effect: the
// key is the certificate's (and no CA's), the certificate is a leaf that
// chains to one of cas (the bundle's ca.crt) for t's usage at now, and
// its subject (CN, O) and SANs are exactly t's. It returns the parsed
// certificate. Whoever signed it, a certificate that fails here would be
// refused at a handshake or name another member: it is never installed.
func CheckIssued(t Target, cas []*x509.Certificate, certPEM, keyPEM []byte, now time.Time) (*x509.Certificate, error) {
	if err := certsOnly(t.CertPath(), certPEM); err != nil {
		return nil, err
	}
	if err := oneKey(t.KeyPath(), keyPEM); err != nil {
		return nil, err
	}
	certs, err := certx.ParseCertificates(certPEM)
	if err != nil {
		return nil, input.Errorf("%s: new certificate: %v", t.ID, err)
	}
	cert := certs[0]
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return nil, input.Errorf("%s: new key: %v", t.ID, err)
	}
	if !certx.KeyMatches(cert, key.Public()) {
		return nil, input.Errorf("%s: the new certificate (serial %s) is not for the new key", t.ID, ShortSerial(certx.Serial(cert)))
	}
	for _, c := range cas {
		if certx.KeyMatches(c, key.Public()) {
			return nil, input.Errorf("%s: %w", t.ID, ErrCAKey)
		}
	}
	if cert.IsCA {
		return nil, input.Errorf("%s: the new certificate is a CA certificate (CA:TRUE), not a %s certificate", t.ID, t.Kind.Name)
	}
	if len(cas) == 0 {
		return nil, input.Errorf("%s: %s holds no CA to check the new certificate against", t.ID, t.CAPath())
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{t.Usage()}}); err != nil {
		return nil, input.Errorf("%s: the new certificate (serial %s) does not chain to %s for %s: %v", t.ID, ShortSerial(certx.Serial(cert)), t.CAPath(), t.Kind.Name, err)
	}
	return cert, checkSubject(t, cert)
}

// checkSubject refuses a certificate whose CN, O or SANs are not t's.
func checkSubject(t Target, cert *x509.Certificate) error {
	if cert.Subject.CommonName != t.CommonName {
		return input.Errorf("%s: the new certificate names CN %q, the spec %q", t.ID, cert.Subject.CommonName, t.CommonName)
	}
	if o := cert.Subject.Organization; !sameSet(o, t.Organization) {
		return input.Errorf("%s: the new certificate names O %v, the spec %v", t.ID, o, t.Organization)
	}
	if missing, extra := sanDiff(cert, t.Hosts); len(missing)+len(extra) > 0 {
		return input.Errorf("%s: the new certificate's SANs %v are not the spec's %v (missing %v, extra %v)", t.ID, certx.SANs(cert), t.Hosts, missing, extra)
	}
	return nil
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// RevokedInBundle reports whether the crl.der of the bundle store dir
// revokes serial (lower-case hex). A bundle without a CRL revokes
// nothing; one that does not parse is an error, as it is to etcd.
func RevokedInBundle(dir, serial string) (bool, error) {
	data, err := ReadStored(dir, CRLFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, storedError(filepath.Join(dir, CRLFile), err)
	}
	l, err := ParseCRL(data)
	if err != nil {
		return false, input.Errorf("%s: %v", filepath.Join(dir, CRLFile), err)
	}
	for _, e := range l.RevokedCertificateEntries {
		if fmt.Sprintf("%x", e.SerialNumber) == serial {
			return true, nil
		}
	}
	return false, nil
}
