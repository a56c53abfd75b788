package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/etcdpki/etcdpki/internal/certx"
)

// ReadCAs reads every certificate in a CA file, in file order. A bundle's
// ca.crt holds one CA today; during a staged CA rotation it holds the old
// and the new, and which of them it holds is how the stage is told from
// the files.
func ReadCAs(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cas, err := certx.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cas, nil
}

// CAs reads the CAs the bundle's holder trusts.
func (b Bundle) CAs() ([]*x509.Certificate, error) { return ReadCAs(b.CAPath()) }

// ErrNoSigner means none of the given CAs signed the certificate.
var ErrNoSigner = errors.New("signed by none of the given CAs")

// SignedBy returns which of cas signed leaf, by signature, not by name:
// an old and a new CA may share a subject.
func SignedBy(leaf *x509.Certificate, cas []*x509.Certificate) (*x509.Certificate, error) {
	for _, c := range cas {
		if leaf.CheckSignatureFrom(c) == nil {
			return c, nil
		}
	}
	return nil, ErrNoSigner
}
