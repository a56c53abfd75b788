package verify

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
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
)

// keyModeMask: a private key that grants group or others any access (read,
// write or execute) is as good as leaked, or replaceable; kubeadm writes
// keys 0600.
const keyModeMask fs.FileMode = 0o077

// localChecks checks the TLS material on disk and returns the client TLS
// config when it is usable (nil when it is not, and endpoints cannot be
// probed).
func localChecks(in *Inputs, now time.Time) ([]Check, *tls.Config) {
	var checks []Check
	add := func(name, target string, st Status, format string, args ...any) {
		checks = append(checks, Check{Name: name, Target: target, Status: st, Reason: fmt.Sprintf(format, args...)})
	}

	cas, caErr := probe.ReadCertificates(in.CAFile)
	if caErr != nil {
		add(CheckCAFile, in.CAFile, Fail, "cannot use the CA file: %v", caErr)
	} else {
		st, note := caFileNote(in, cas)
		add(CheckCAFile, in.CAFile, st, "%d CA certificate(s): %s%s", len(cas), cas[0].Subject.CommonName, note)
		for _, c := range cas {
			checks = append(checks, expiryCheck(CheckCAExpiry, in.CAFile, "CA "+c.Subject.CommonName, c.NotBefore, c.NotAfter, now, in.renewBefore))
		}
	}

	certs, certErr := probe.ReadCertificates(in.CertFile)
	if certErr != nil {
		add(CheckClientCertFile, in.CertFile, Fail, "cannot use the client certificate: %v", certErr)
	} else {
		add(CheckClientCertFile, in.CertFile, OK, "CN %q issued by %q", certs[0].Subject.CommonName, certs[0].Issuer.CommonName)
	}

	keyPEM, mode, keyErr := readKey(in.KeyFile)
	if keyErr != nil {
		add(CheckClientKeyFile, in.KeyFile, Fail, "cannot read the client key: %v", keyErr)
	} else {
		add(CheckClientKeyFile, in.KeyFile, OK, "readable")
		if m := mode.Perm(); m&keyModeMask != 0 {
			add(CheckKeyPermissions, in.KeyFile, Fail, "mode %04o gives group or others access to it; chmod 600 %s", m, in.KeyFile)
		} else {
			add(CheckKeyPermissions, in.KeyFile, OK, "mode %04o", m)
		}
	}

	var pair *tls.Certificate
	if certErr == nil && keyErr == nil {
		key, err := certx.ParseKey(keyPEM)
		switch {
		case err != nil:
			add(CheckKeyMatchesCert, in.KeyFile, Fail, "cannot load the pair: %v", err)
		case !certx.KeyMatches(certs[0], key.Public()):
			add(CheckKeyMatchesCert, in.KeyFile, Fail, "the key does not belong to %s: a half-replaced pair?", in.CertFile)
		default:
			add(CheckKeyMatchesCert, in.KeyFile, OK, "key matches the certificate")
			p := probe.KeyPair(certs, key)
			pair = &p
		}
	}

	var pool *x509.CertPool
	if caErr == nil {
		pool = probe.CertPool(cas)
	}
	if certErr == nil {
		leaf := certs[0]
		if caErr == nil {
			checks = append(checks, chainCheck(in, pool, certs, now))
		}
		switch {
		case len(leaf.ExtKeyUsage) == 0:
			add(CheckClientAuth, in.CertFile, Warn, "no extended key usage: accepted as any usage, but kubeadm's client certs carry clientAuth")
		case slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
			add(CheckClientAuth, in.CertFile, OK, "has clientAuth")
		default:
			add(CheckClientAuth, in.CertFile, Fail, "no clientAuth extended key usage (has %s): etcd will reject it as a client certificate", ekuNames(leaf.ExtKeyUsage))
		}
		checks = append(checks, expiryCheck(CheckClientExpiry, in.CertFile, "client certificate", leaf.NotBefore, leaf.NotAfter, now, in.renewBefore))
		checks = append(checks, notCACheck(in, leaf, cas, pair))
	}

	if caErr != nil || pair == nil {
		return checks, nil
	}
	return checks, probe.ClientConfig(pool, pair)
}

// notCACheck fails a client certificate that is a CA (CA:TRUE) or whose
// key is a CA's: handing kube-apiserver the CA's pair would put the CA
// key on every apiserver host (and --print-flags would write its path
// into the flags), where anyone who reads it can mint any identity.
func notCACheck(in *Inputs, leaf *x509.Certificate, cas []*x509.Certificate, pair *tls.Certificate) Check {
	ch := Check{Name: CheckClientNotCA, Target: in.CertFile, Status: Fail}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		ch.Reason = fmt.Sprintf("%q is a CA certificate (CA:TRUE), never a client's: give kube-apiserver its own client pair (apiserver-etcd-client.crt/.key), and keep the CA key in the PKI directory", leaf.Subject.CommonName)
		return ch
	}
	if pair != nil {
		for _, c := range cas {
			if certx.KeyMatches(c, pair.PrivateKey.(crypto.Signer).Public()) {
				ch.Target = in.KeyFile
				ch.Reason = fmt.Sprintf("the key is the key of CA %q, never a client's: give kube-apiserver its own client pair, and keep the CA key in the PKI directory", c.Subject.CommonName)
				return ch
			}
		}
	}
	ch.Status, ch.Reason = OK, "not a CA certificate or key"
	return ch
}

// readKey reads a key file once, with its mode from the same open file.
func readKey(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, pathx.UnwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, pathx.UnwrapPath(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, pathx.UnwrapPath(err)
	}
	return data, fi.Mode(), nil
}

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
