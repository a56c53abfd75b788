package pki

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// ReadPair reads a certificate and its key from one version of their
// store, resolved once, so a pair read while a writer switches the store
// is the old pair or the new one, never the new certificate with the old
// key. A store whose link a crash left missing is read as the next update
// will see it. Neither file present is not an error (both nil); one
// without the other, or an unreadable file, is an input error naming the
// file. Readers take no lock.
func ReadPair(dir, certName, keyName string) (certPEM, keyPEM []byte, err error) {
	data, errs := atomicdir.ReadSet(dir, certName, keyName)
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	certErr, keyErr := errs[0], errs[1]
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		// Say what is wrong with the key before that the cert is missing.
		return nil, nil, readError(keyPath, keyErr)
	case certErr != nil:
		return nil, nil, readError(certPath, certErr)
	case keyErr != nil:
		return nil, nil, readError(keyPath, keyErr)
	}
	return data[0], data[1], nil
}

// ReadTargetPair is ReadPair for a target's store.
func ReadTargetPair(t Target) (certPEM, keyPEM []byte, err error) {
	return ReadPair(t.Dir, t.CertName, t.KeyName)
}

// LoadCA loads the PKI directory's CA for signing; its files must exist.
func LoadCA(p Paths) (*ca.CA, error) {
	a, err := loadCAIn(p.CADir())
	if err == nil && a == nil {
		return nil, readError(p.CACert(), fs.ErrNotExist)
	}
	return a, err
}

// LoadCAIfAny is LoadCA, but nil and no error when neither of the CA's
// files exists: init then creates the CA.
func LoadCAIfAny(p Paths) (*ca.CA, error) { return loadCAIn(p.CADir()) }

// LoadNextCA loads the CA a rotation is rolling out; nil and no error when
// no CA rotation is in progress.
func LoadNextCA(p Paths) (*ca.CA, error) { return loadCAIn(p.NextCADir()) }

// loadCAIn loads the CA pair of a CA store, nil when neither file exists.
// A store holding ca.key.uri instead of ca.key has its key in a PKCS#11
// token: the certificate and the URI are read from one version, and the
// token is opened and its key matched to the certificate.
func loadCAIn(dir string) (*ca.CA, error) {
	certPEM, uriData, err := ReadPair(dir, CAFile, ca.KeyURIFile)
	if err == nil && uriData != nil {
		certPath := filepath.Join(dir, CAFile)
		if err := certsOnly(certPath, certPEM); err != nil {
			return nil, err
		}
		return ca.ParseStore(certPEM, nil, uriData, certPath, filepath.Join(dir, CAKeyFile), filepath.Join(dir, ca.KeyURIFile))
	}
	certPEM, keyPEM, err := ReadPair(dir, CAFile, CAKeyFile)
	if err != nil || certPEM == nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if err := certsOnly(certPath, certPEM); err != nil {
		return nil, err
	}
	if err := oneKey(keyPath, keyPEM); err != nil {
		return nil, err
	}
	return ca.ParseFiles(certPEM, keyPEM, certPath, keyPath)
}

// ReadError is the input error for a file that cannot be read: missing
// (with the command that makes it) or unreadable (with the cause).
func ReadError(path string, err error) error { return readError(path, err) }

func readError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return input.Errorf("%s: does not exist (run etcdpki init first)", path)
	}
	if _, refused := errors.AsType[*regular.Error](err); refused {
		return input.Errorf("%s: %v", path, pathx.UnwrapPath(err))
	}
	return input.Errorf("%s: cannot read: %v", path, pathx.UnwrapPath(err))
}

// CertsOnly refuses a certificate file that also holds a private key (see
// certsOnly): the one rule, for every reader of an operator's files.
func CertsOnly(path string, data []byte) error { return certsOnly(path, data) }

// OneKey refuses a key file holding more than its one key (see oneKey):
// the one rule, for every reader of an operator's files.
func OneKey(path string, data []byte) error { return oneKey(path, data) }

// isPrivateKey reports whether a PEM block holds a private key of any
// encoding.
func isPrivateKey(b *pem.Block) bool { return strings.Contains(b.Type, "PRIVATE KEY") }

// certsOnly refuses a certificate file that also holds a private key
// (cat ca.crt ca.key > ca.crt): whoever may read the certificate, every
// peer for a CA bundle, would read the key with it.
func certsOnly(path string, data []byte) error {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if isPrivateKey(b) {
			return input.Errorf("%s: holds a private key (%s); a certificate file must hold certificates only", path, b.Type)
		}
	}
}

// oneKey refuses a key file holding more than its one key (another key
// or a certificate appended to it): which of them a TLS library takes is
// its choice, not ours. openssl's "EC PARAMETERS" block before an EC key
// is part of the key.
func oneKey(path string, data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "EC PARAMETERS" {
			n++
		}
	}
	if n > 1 {
		return input.Errorf("%s: holds %d PEM blocks; a key file must hold its one private key only", path, n)
	}
	return nil
}

// stripCerts is data without any private key block: the certificates a
// repaired certificate file keeps, in order, byte for byte.
func stripCerts(data []byte) []byte {
	var out bytes.Buffer
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out.Bytes()
		}
		if !isPrivateKey(b) {
			pem.Encode(&out, b)
		}
	}
}

// firstKey is data reduced to its first private key (and the EC
// PARAMETERS block before it, if any): what a repaired key file keeps.
func firstKey(data []byte) []byte {
	var out bytes.Buffer
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out.Bytes()
		}
		switch {
		case b.Type == "EC PARAMETERS":
			pem.Encode(&out, b)
		case isPrivateKey(b):
			pem.Encode(&out, b)
			return out.Bytes()
		}
	}
}
