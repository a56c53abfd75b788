package runner

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// found is a certificate file etcdpki wrote, with its key when it is
// beside it.
type found struct {
	certPath string
	cert     *x509.Certificate
	keyPath  string
}

// serialIndex maps a serial to a certificate file etcdpki wrote with it.
type serialIndex map[string]*found

// indexSerials reads every certificate etcdpki keeps, once: the backups
// of replaced pairs, the one-off certificates of etcdpki issue, and the
// bundles. A revoke looks every serial up in it, instead of walking the
// tree twice per serial: among 2,000 certificates, 0.12 s a serial
// before, 0.006 s after (BenchmarkRevokeSerialLookups). The first file found for a serial wins,
// in that order: a backup holds the key beside the revoked certificate.
func indexSerials(pkiDir string) (serialIndex, error) {
	idx := serialIndex{}
	for _, root := range []string{"backup", "issued", "nodes", "clients", "apiserver"} {
		err := filepath.WalkDir(filepath.Join(pkiDir, root), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || !d.Type().IsRegular() || !strings.HasSuffix(path, ".crt") || strings.HasSuffix(path, pki.CAFile) {
				return nil
			}
			c, err := ReadCert(path)
			if err != nil {
				return nil
			}
			serial := certx.Serial(c)
			if _, ok := idx[serial]; ok {
				return nil
			}
			f := &found{certPath: path, cert: c}
			if key := strings.TrimSuffix(path, ".crt") + ".key"; fileExists(key) {
				f.keyPath = key
			}
			idx[serial] = f
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return idx, nil
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

// issuedHere ties serial to this CA: a certificate etcdpki kept with that
// serial, signed by authority.
func (idx serialIndex) issuedHere(pkiDir, serial string, authority *ca.CA) (*found, error) {
	f := idx[serial]
	if f == nil {
		return nil, fmt.Errorf("no certificate with this serial in %s (backups, issued, bundles): it cannot be tied to this CA", pkiDir)
	}
	if err := f.cert.CheckSignatureFrom(authority.Cert); err != nil {
		return nil, fmt.Errorf("%s has this serial but was not signed by this CA (%s)", f.certPath, authority.Cert.Subject.CommonName)
	}
	return f, nil
}

// presented is what the proof presents for a revoked serial, and its
// control: the same certificate but for its serial and key (ca.Twin), so
// that a port accepting the control and refusing the pair refuses the
// pair for its serial, which only the CRL does.
type presented struct {
	pair, control tls.Certificate
	// how says what pair is, for the log and each port's verdict.
	how string
	// probe is true when pair is a probe minted with the serial, false
	// when it is the revoked certificate itself.
	probe bool
}

// revokedPair is what the proof presents for a revoked serial: the
// revoked certificate itself with its key when etcdpki kept them (the
// backup of the pair it replaced) and this CA signed it, else a probe
// certificate minted in memory with the same serial (etcd compares
// serials only). A certificate of another CA (a pair replaced before a CA
// rotation) is not presented: the control, signed by this CA, would then
// differ from it by more than its serial.
func (idx serialIndex) revokedPair(pkiDir, serial string, authority *ca.CA) (presented, error) {
	if f := idx[serial]; f != nil && f.keyPath != "" && f.cert.CheckSignatureFrom(authority.Cert) == nil {
		pair, err := probe.LoadKeyPair(f.certPath, f.keyPath)
		if err == nil {
			control, err := authority.Twin(f.cert)
			if err != nil {
				return presented{}, err
			}
			rel, _ := filepath.Rel(pkiDir, f.certPath)
			return presented{pair: pair, control: control, how: "the revoked certificate itself, " + rel}, nil
		}
	}
	return serialProbe(serial, authority)
}

// serialProbe is a probe certificate minted with serial, without SANs, and
// its twin: what is presented when the revoked certificate itself is not
// at hand, or cannot prove anything on a port that refuses its twin too.
func serialProbe(serial string, authority *ca.CA) (presented, error) {
	n, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		return presented{}, fmt.Errorf("serial %q is not hexadecimal", serial)
	}
	pair, err := authority.ProbeWithSerial(n, time.Now())
	if err != nil {
		return presented{}, err
	}
	control, err := authority.Twin(pair.Leaf)
	if err != nil {
		return presented{}, err
	}
	return presented{pair: pair, control: control, how: "a probe certificate minted with its serial", probe: true}, nil
}

func rootsPool(roots []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return pool
}
