package issue

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// existingPair returns an existing valid pair, nil when there is none, or
// an input error when what is there can't be used. A pair that is merely
// due is reused: renewing is `certs renew`'s and rotate's job.
func existingPair(t pki.Target, a *ca.CA, now time.Time) (certPEM, keyPEM []byte, warn string, err error) {
	certPEM, keyPEM, err = readStoredPair(t)
	info, pc := inspect(t, a, certPEM, keyPEM, err, 0, now)
	switch info.Status {
	case StatusMissing:
		return nil, nil, "", nil
	case StatusInvalid:
		return nil, nil, "", pc.err
	case StatusExpired:
		return nil, nil, "", inputError("%s: expired on %s; run: etcdpki certs renew %s", t.CertPath(), info.Expires.Format(time.DateOnly), t.ID)
	}
	if pc.sanNote != "" {
		warn = fmt.Sprintf(" (SANs differ from the spec: %s; run: etcdpki certs renew %s)", pc.sanNote, t.ID)
	}
	return certPEM, keyPEM, warn, nil
}

// validatePair checks that a pair belongs together and was issued by a
// for the target's usage. Expiry is the caller's business.
func validatePair(t pki.Target, a *ca.CA, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := ca.ParseCert(certPEM)
	if err != nil {
		return nil, inputError("%s: %v", t.CertPath(), err)
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return nil, inputError("%s: %v", t.KeyPath(), err)
	}
	if !certx.KeyMatches(cert, key.Public()) {
		return nil, inputError("%s: key does not match certificate %s", t.KeyPath(), t.CertPath())
	}
	// Verify at a time the certificate is valid, so that expiry is
	// reported as expiry and not as a chain error.
	at := cert.NotBefore
	if a.Cert.NotBefore.After(at) {
		at = a.Cert.NotBefore
	}
	at = at.Add(time.Second)
	if err := a.Verify(cert, t.Usage(), at); err != nil {
		return nil, inputError("%s: not a valid %s certificate from this PKI's CA: %v", t.CertPath(), t.Kind.Name, err)
	}
	return cert, nil
}

// sanDiff compares a certificate's SANs with the wanted hosts.
func sanDiff(cert *x509.Certificate, want []string) (missing, extra []string) {
	have := certx.SANs(cert)
	for _, h := range want {
		if !slices.Contains(have, h) {
			missing = append(missing, h)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	return missing, extra
}

// checkPairs is the last check before a store switches: every NAME.crt
// with a NAME.key beside it must match it.
func checkPairs(files map[string][]byte) error {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".crt") {
			continue
		}
		key, ok := files[strings.TrimSuffix(n, ".crt")+".key"]
		if !ok {
			continue
		}
		if err := ca.CheckPair(files[n], key); err != nil {
			return fmt.Errorf("pair %s: %w", n, err)
		}
	}
	return nil
}

// readStoredPair is readPair through atomicdir.Read: the pair as the next
// write will see it, even where a crash left a link missing.
func readStoredPair(t pki.Target) (certPEM, keyPEM []byte, err error) {
	certPEM, certErr := atomicdir.Read(t.Dir, t.CertName)
	keyPEM, keyErr := atomicdir.Read(t.Dir, t.KeyName)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		// Say what is wrong with the key before that the cert is missing.
		return nil, nil, readError(t.KeyPath(), keyErr)
	case certErr != nil:
		return nil, nil, readError(t.CertPath(), certErr)
	case keyErr != nil:
		return nil, nil, readError(t.KeyPath(), keyErr)
	}
	return certPEM, keyPEM, nil
}
