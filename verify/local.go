package verify

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// Local check names.
const (
	CheckCAFile         = "ca-file"
	CheckCAExpiry       = "ca-expiry"
	CheckClientCertFile = "client-cert-file"
	CheckClientKeyFile  = "client-key-file"
	CheckKeyMatchesCert = "key-matches-cert"
	CheckClientChain    = "client-cert-chain"
	CheckClientAuth     = "client-cert-usage"
	CheckClientExpiry   = "client-cert-expiry"
	CheckKeyPermissions = "key-permissions"
	CheckClientNotCA    = "client-cert-not-ca"
	// CheckFileMode is a key or directory of the spec's PKI looser than
	// etcdpki keeps it (keys 0600, the CA key 0400, directories 0700).
	CheckFileMode = "file-mode"
)

// keyModeMask: a private key that grants group or others any access (read,
// write or execute) is as good as leaked, or replaceable; kubeadm writes
// keys 0600.
const keyModeMask fs.FileMode = 0o077

// localChecks checks the TLS material on disk and returns the client TLS
// config when it is usable (nil when it is not, and endpoints cannot be
// probed).
func localChecks(in *Inputs, now time.Time) ([]Check, *tls.Config) {
	var lc localRun
	cas, caErr := lc.caFile(in, now)
	certs, key, pairErr := lc.pair(in, cas)
	var pool *x509.CertPool
	if caErr == nil {
		pool = probe.CertPool(cas)
	}
	if certs != nil {
		if caErr == nil {
			lc.checks = append(lc.checks, chainCheck(in, pool, certs, now))
		}
		lc.usage(in, certs[0])
		lc.checks = append(lc.checks, expiryCheck(CheckClientExpiry, in.CertFile, "client certificate", certs[0].NotBefore, certs[0].NotAfter, now, in.renewBefore))
		lc.checks = append(lc.checks, notCACheck(in, certs[0], cas, key))
	}
	if in.inv != nil {
		lc.modes(in.inv)
	}
	if caErr != nil || pairErr != nil {
		return lc.checks, nil
	}
	pair := probe.KeyPair(certs, key)
	return lc.checks, probe.ClientConfig(pool, &pair)
}

// notCACheck fails a client certificate that is a CA (CA:TRUE) or whose
// key is a CA's: handing kube-apiserver the CA's pair would put the CA
// key on every apiserver host (and --print-flags would write its path
// into the flags), where anyone who reads it can mint any identity.
func notCACheck(in *Inputs, leaf *x509.Certificate, cas []*x509.Certificate, key crypto.Signer) Check {
	ch := Check{Name: CheckClientNotCA, Target: in.CertFile, Status: Fail}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		ch.Reason = fmt.Sprintf("%q is a CA certificate (CA:TRUE), never a client's: give kube-apiserver its own client pair (apiserver-etcd-client.crt/.key), and keep the CA key in the PKI directory", leaf.Subject.CommonName)
		return ch
	}
	if key != nil {
		for _, c := range cas {
			if certx.KeyMatches(c, key.Public()) {
				ch.Target = in.KeyFile
				ch.Reason = fmt.Sprintf("the key is the key of CA %q, never a client's: give kube-apiserver its own client pair, and keep the CA key in the PKI directory", c.Subject.CommonName)
				return ch
			}
		}
	}
	ch.Status, ch.Reason = OK, "not a CA certificate or key"
	return ch
}

// localRun collects the local checks as they are made.
type localRun struct{ checks []Check }

func (lc *localRun) add(name, target string, st Status, format string, args ...any) {
	lc.checks = append(lc.checks, Check{Name: name, Target: target, Status: st, Reason: fmt.Sprintf(format, args...)})
}

// caFile checks the CA file: it parses, holds certificates only (a
// private key in it would go to every holder of the bundle), and each CA
// in it is within its validity.
func (lc *localRun) caFile(in *Inputs, now time.Time) ([]*x509.Certificate, error) {
	cas, err := readCerts(in.CAFile)
	if err != nil {
		lc.add(CheckCAFile, in.CAFile, Fail, "cannot use the CA file: %v", err)
		return nil, err
	}
	st, note := caFileNote(in, cas)
	lc.add(CheckCAFile, in.CAFile, st, "%d CA certificate(s): %s%s", len(cas), cas[0].Subject.CommonName, note)
	for _, c := range cas {
		lc.checks = append(lc.checks, expiryCheck(CheckCAExpiry, in.CAFile, "CA "+c.Subject.CommonName, c.NotBefore, c.NotAfter, now, in.renewBefore))
	}
	return cas, nil
}

// readCerts reads a certificate file and refuses one that also holds a
// private key.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := regular.ReadFile(path, regular.MaxPEM)
	if err != nil {
		return nil, fmt.Errorf("read: %w", pathx.UnwrapPath(err))
	}
	return parseCerts(data)
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	certs, err := certx.ParseCertificates(data)
	if err == nil && pemBlocks(data, isPrivateKey) > 0 {
		return nil, errors.New("holds a private key: a certificate file must hold certificates only")
	}
	return certs, err
}

// pair reads the client certificate and key from one version of their
// store (a renewal switching it meanwhile is never seen half done) and
// checks each file, that they belong together and that the key is none
// of the CAs' in cas. certs is nil when the
// certificate cannot be used, err non-nil when the pair cannot.
func (lc *localRun) pair(in *Inputs, cas []*x509.Certificate) (certs []*x509.Certificate, key crypto.Signer, err error) {
	data, errs := atomicdir.ReadTogether(in.CertFile, in.KeyFile)
	certErr := errs[0]
	if certErr == nil {
		certs, certErr = parseCerts(data[0])
	} else {
		certErr = fmt.Errorf("read: %w", pathx.UnwrapPath(certErr))
	}
	if certErr != nil {
		certs = nil
		lc.add(CheckClientCertFile, in.CertFile, Fail, "cannot use the client certificate: %v", certErr)
	} else {
		lc.add(CheckClientCertFile, in.CertFile, OK, "CN %q issued by %q", certs[0].Subject.CommonName, certs[0].Issuer.CommonName)
	}
	keyErr := errs[1]
	if keyErr != nil {
		lc.add(CheckClientKeyFile, in.KeyFile, Fail, "cannot read the client key: %v", pathx.UnwrapPath(keyErr))
	} else if n := pemBlocks(data[1], nil); n > 1 {
		keyErr = fmt.Errorf("%d PEM blocks", n)
		lc.add(CheckClientKeyFile, in.KeyFile, Fail, "holds %d PEM blocks: a key file must hold its one private key only", n)
	} else {
		lc.add(CheckClientKeyFile, in.KeyFile, OK, "readable")
		lc.keyMode(in.KeyFile)
	}
	if certErr != nil || keyErr != nil {
		return certs, nil, errors.Join(certErr, keyErr)
	}
	key, err = certx.ParseKey(data[1])
	switch {
	case err != nil:
		lc.add(CheckKeyMatchesCert, in.KeyFile, Fail, "cannot load the pair: %v", err)
	case slices.ContainsFunc(cas, func(c *x509.Certificate) bool { return certx.KeyMatches(c, key.Public()) }):
		// Whoever holds a client's bundle could sign certificates every
		// member trusts.
		err = pki.ErrCAKey
		lc.add(CheckKeyMatchesCert, in.KeyFile, Fail, "the key is the CA key: a CA key is never a client's")
	case !certx.KeyMatches(certs[0], key.Public()):
		err = probe.ErrKeyMismatch
		lc.add(CheckKeyMatchesCert, in.KeyFile, Fail, "the key does not belong to %s: a half-replaced pair?", in.CertFile)
	default:
		lc.add(CheckKeyMatchesCert, in.KeyFile, OK, "key matches the certificate")
	}
	return certs, key, err
}

// keyMode fails a key that group or others can reach.
func (lc *localRun) keyMode(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if m := fi.Mode().Perm(); m&keyModeMask != 0 {
		lc.add(CheckKeyPermissions, path, Fail, "mode %04o gives group or others access to it; chmod 600 %s", m, path)
	} else {
		lc.add(CheckKeyPermissions, path, OK, "mode %04o", m)
	}
}

// usage checks the client certificate carries clientAuth.
func (lc *localRun) usage(in *Inputs, leaf *x509.Certificate) {
	switch {
	case len(leaf.ExtKeyUsage) == 0:
		lc.add(CheckClientAuth, in.CertFile, Warn, "no extended key usage: accepted as any usage, but kubeadm's client certs carry clientAuth")
	case slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
		lc.add(CheckClientAuth, in.CertFile, OK, "has clientAuth")
	default:
		lc.add(CheckClientAuth, in.CertFile, Fail, "no clientAuth extended key usage (has %s): etcd will reject it as a client certificate", ekuNames(leaf.ExtKeyUsage))
	}
}

// modes reports, with a spec, every key and directory of its PKI looser
// than etcdpki keeps them. A key that gives group or others access fails,
// as the key-permissions check does; any other difference (a directory
// 0755, a CA key 0600 that its owner can overwrite) warns.
func (lc *localRun) modes(inv *pki.Inventory) {
	for _, l := range inv.LooseModes() {
		st := Warn
		if l.Want != pki.DirMode && l.Have&keyModeMask != 0 {
			st = Fail
		}
		lc.add(CheckFileMode, l.Path, st, "mode %04o, want %04o: etcdpki init tightens it", l.Have, l.Want)
	}
}

// pemBlocks counts the PEM blocks of data that match (all when match is
// nil), leaving out openssl's EC PARAMETERS block, which belongs to the
// key after it.
func pemBlocks(data []byte, match func(*pem.Block) bool) int {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
		if b.Type != "EC PARAMETERS" && (match == nil || match(b)) {
			n++
		}
	}
}

func isPrivateKey(b *pem.Block) bool { return strings.Contains(b.Type, "PRIVATE KEY") }

// chainCheck verifies the client cert against the CA file now, or, when
// the cert itself is outside its validity, at the nearest moment inside
// it: an expired cert is reported once, by the expiry check, rather than
// as a broken chain too.
func chainCheck(in *Inputs, pool *x509.CertPool, certs []*x509.Certificate, now time.Time) Check {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	at := now
	switch {
	case at.After(leaf.NotAfter):
		at = leaf.NotAfter.Add(-time.Second)
	case at.Before(leaf.NotBefore):
		at = leaf.NotBefore.Add(time.Second)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	c := Check{Name: CheckClientChain, Target: in.CertFile}
	if err != nil {
		c.Status = Fail
		c.Reason = fmt.Sprintf("not signed by the CA in %s (issuer %q): %v", in.CAFile, leaf.Issuer.CommonName, err)
		return c
	}
	c.Status, c.Reason = OK, fmt.Sprintf("chains to %q", leaf.Issuer.CommonName)
	return c
}

// expiryCheck fails a certificate outside its validity (notBefore to
// notAfter) and warns inside the renew-before window.
func expiryCheck(name, target, what string, notBefore, notAfter, now time.Time, renewBefore time.Duration) Check {
	ch := Check{Name: name, Target: target, Status: OK}
	left := notAfter.Sub(now)
	switch {
	case now.Before(notBefore):
		ch.Status = Fail
		ch.Reason = fmt.Sprintf("%s is not valid until %s (in %s): check the clocks", what, notBefore.UTC().Format(time.RFC3339), roundDur(notBefore.Sub(now)))
	case left <= 0:
		ch.Status = Fail
		ch.Reason = fmt.Sprintf("%s expired %s ago, at %s", what, roundDur(-left), notAfter.UTC().Format(time.RFC3339))
	case left < renewBefore:
		ch.Status = Warn
		ch.Reason = fmt.Sprintf("%s expires in %s (%s), inside renew-before %s: run etcdpki rotate", what, roundDur(left), notAfter.UTC().Format(time.RFC3339), cluster.FormatDuration(renewBefore))
	default:
		ch.Reason = fmt.Sprintf("%s valid until %s (%s left)", what, notAfter.UTC().Format(time.RFC3339), roundDur(left))
	}
	return ch
}

// roundDur prints durations as a person reads them: days when long.
func roundDur(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Minute:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func ekuNames(ekus []x509.ExtKeyUsage) string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
		x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	}
	var out []string
	for _, e := range ekus {
		if n, ok := names[e]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku-%d", e))
		}
	}
	return fmt.Sprint(out)
}
