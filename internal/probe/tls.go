// Package probe checks etcd endpoints over real TLS, one endpoint at a time
// or a whole cluster at once. It is shared by verify (which reports every
// finding) and rotate (which gates each restart on it), so that "healthy"
// means the same thing everywhere.
//
// Every probe is bounded by a timeout: an endpoint that accepts TCP and then
// never answers costs one timeout, and endpoints are probed concurrently so
// a cluster costs about as much as its slowest member.
package probe

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// Sentinel errors for bad TLS input. They are wrapped in an *FileError
// naming the file, so callers can both match the class and print the path.
var (
	// ErrNoCA means no CA file was given. There is deliberately no
	// fallback to the system roots: an etcd cluster has its own CA, and a
	// public CA vouching for an etcd server proves nothing.
	ErrNoCA = errors.New("no CA file given")
	// ErrNoCertificates means a file meant to hold certificates holds no
	// PEM CERTIFICATE block.
	ErrNoCertificates = certx.ErrNoCertificates
	// ErrPairIncomplete means a client certificate was given without its
	// key or the other way round.
	ErrPairIncomplete = errors.New("client certificate and key must be given together")
	// ErrKeyMismatch means the key does not belong to the certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
)

// FileError is a TLS input file that cannot be used. It is always fatal
// to the probe, but it is not an exit-code marker (see package input):
// verify reports it as a failed check and rotate as a failed step, both
// exit 1, because the file is the cluster's material, not the command
// line's.
type FileError struct {
	// What names the file's role: "CA file", "client certificate"...
	What string
	Path string
	Err  error
}

// Error names the file, its role and the problem.
func (e *FileError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", e.What, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.What, e.Path, e.Err)
}

// Unwrap returns the sentinel or I/O error.
func (e *FileError) Unwrap() error { return e.Err }

// minTLSVersion is TLS 1.2: etcd's own default minimum, and what
// kube-apiserver negotiates with it.
const minTLSVersion = tls.VersionTLS12

// TLSConfig builds the client TLS configuration kube-apiserver would use
// from --etcd-cafile, --etcd-certfile and --etcd-keyfile. caFile is
// required; certFile and keyFile are optional but must come together. Every
// problem is returned as an *FileError: nothing is ever skipped or
// replaced by a default.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, &FileError{What: "CA file", Err: ErrNoCA}
	}
	pool, err := LoadCertPool(caFile)
	if err != nil {
		return nil, err
	}
	switch {
	case certFile == "" && keyFile == "":
		return ClientConfig(pool, nil), nil
	case certFile == "":
		return nil, &FileError{What: "client key", Path: keyFile, Err: ErrPairIncomplete}
	case keyFile == "":
		return nil, &FileError{What: "client certificate", Path: certFile, Err: ErrPairIncomplete}
	}
	pair, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return ClientConfig(pool, &pair), nil
}

// ClientConfig is the client TLS configuration for an etcd cluster whose
// CA certificates are in pool, presenting pair when it is not nil.
func ClientConfig(pool *x509.CertPool, pair *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: pool, MinVersion: minTLSVersion}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{*pair}
	}
	return cfg
}

// LoadCertPool reads a PEM file of CA certificates into a pool holding
// only those certificates.
func LoadCertPool(caFile string) (*x509.CertPool, error) {
	certs, err := ReadCertificates(caFile)
	if err != nil {
		return nil, &FileError{What: "CA file", Path: caFile, Err: err}
	}
	return CertPool(certs), nil
}

// CertPool is a pool holding exactly certs.
func CertPool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// ReadCertificates parses every CERTIFICATE block of a PEM file. A file
// with none, or with a block that does not parse, is an error.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := regular.ReadFile(path, regular.MaxPEM)
	if err != nil {
		return nil, fmt.Errorf("read: %w", pathx.UnwrapPath(err))
	}
	return certx.ParseCertificates(data)
}

// LoadKeyPair loads a certificate and its key, reading each file once and
// saying which file is at fault when something is wrong.
//
// Both are read from one version of their store (atomicdir.ReadTogether),
// so a pair read while a writer switches the store is never the new
// certificate with the old key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	data, errs := atomicdir.ReadTogether(certFile, keyFile)
	if errs[0] != nil {
		return tls.Certificate{}, &FileError{What: "client certificate", Path: certFile, Err: fmt.Errorf("read: %w", pathx.UnwrapPath(errs[0]))}
	}
	certs, err := certx.ParseCertificates(data[0])
	if err != nil {
		return tls.Certificate{}, &FileError{What: "client certificate", Path: certFile, Err: err}
	}
	keyPEM := data[1]
	if errs[1] != nil {
		return tls.Certificate{}, &FileError{What: "client key", Path: keyFile, Err: fmt.Errorf("read: %w", pathx.UnwrapPath(errs[1]))}
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return tls.Certificate{}, &FileError{What: "client key", Path: keyFile, Err: err}
	}
	if !certx.KeyMatches(certs[0], key.Public()) {
		return tls.Certificate{}, &FileError{What: "client key", Path: keyFile, Err: ErrKeyMismatch}
	}
	return KeyPair(certs, key), nil
}

// KeyPair assembles a TLS certificate from a parsed chain (leaf first) and
// the leaf's private key; the caller has checked that they match.
func KeyPair(certs []*x509.Certificate, key crypto.Signer) tls.Certificate {
	pair := tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, c := range certs {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	return pair
}
