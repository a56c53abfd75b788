package pki

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// CRL file names. The CRL lives in the CA's store (PKI/etcd/crl.der) and
// a copy in every node bundle (etcd/crl.der), switched with the store.
// It is DER because etcd parses the file's bytes as DER: a PEM CRL makes
// it refuse every connection ("x509: malformed crl").
// RevokedFile beside the CA's copy names what each serial was: a CRL
// carries serials only.
const (
	CRLFile     = "crl.der"
	RevokedFile = "revoked.json"
)

// CRL returns the path of the CA's CRL.
func (p Paths) CRL() string { return filepath.Join(p.CADir(), CRLFile) }

// Revoked returns the path of the names of the revoked serials.
func (p Paths) Revoked() string { return filepath.Join(p.CADir(), RevokedFile) }

// NodeCRL returns the path of node's copy of the CRL, the one its member
// reads on every accepted connection.
func (p Paths) NodeCRL(node string) string { return filepath.Join(p.NodeCertDir(node), CRLFile) }

// Reasons are the RFC 5280 revocation reasons an operator may give, by
// the name etcdpki certs revoke --reason takes.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

// ReasonNames lists the reasons in code order, for help and errors.
func ReasonNames() string {
	names := make([]string, 0, len(Reasons))
	for n := range Reasons {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return Reasons[names[i]] < Reasons[names[j]] })
	return strings.Join(names, ", ")
}

// ReasonName is the name of an RFC 5280 reason code.
func ReasonName(code int) string {
	for n, c := range Reasons {
		if c == code {
			return n
		}
	}
	return fmt.Sprintf("reason %d", code)
}

// Revoked is one revoked certificate: its serial (lower-case hex, as
// Serial writes it), the certificate it was (an ID such as
// "client/etcd-admin", "" when not known), why and when.
type Revoked struct {
	Name   string    `json:"name,omitempty"`
	Serial string    `json:"serial"`
	Reason string    `json:"reason"`
	When   time.Time `json:"revokedAt"`
}

// CRL is a parsed revocation list with the names of its serials.
type CRL struct {
	Path       string    `json:"path"`
	Number     *big.Int  `json:"number"`
	ThisUpdate time.Time `json:"thisUpdate"`
	NextUpdate time.Time `json:"nextUpdate"`
	Revoked    []Revoked `json:"revoked"`
	// List is the parsed CRL, for a signature check against a CA.
	List *x509.RevocationList `json:"-"`
}

// Has reports whether serial (lower-case hex) is revoked.
func (c *CRL) Has(serial string) bool {
	if c == nil {
		return false
	}
	for _, r := range c.Revoked {
		if r.Serial == serial {
			return true
		}
	}
	return false
}

// Entry returns the entry for serial.
func (c *CRL) Entry(serial string) (Revoked, bool) {
	if c != nil {
		for _, r := range c.Revoked {
			if r.Serial == serial {
				return r, true
			}
		}
	}
	return Revoked{}, false
}

// ParseCRL parses a CRL exactly as etcd does (x509.ParseRevocationList on
// the file's bytes): what fails here, etcd fails on every connection, and
// then refuses them all.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file: etcd would refuse every connection")
	}
	l, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("not a DER CRL etcd can parse (it would refuse every connection): %w", err)
	}
	return l, nil
}

// ReadCRL reads and parses the CRL at path, with the names from the
// revoked.json beside it when there is one. A missing file is
// fs.ErrNotExist (wrapped).
func ReadCRL(path string) (*CRL, error) {
	data, err := regular.ReadFile(path, regular.MaxCRL)
	if err != nil {
		return nil, err
	}
	l, err := ParseCRL(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &CRL{Path: path, Number: l.Number, ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate, List: l}
	names, err := readNames(filepath.Join(filepath.Dir(path), RevokedFile))
	if err != nil {
		return nil, err
	}
	for _, e := range l.RevokedCertificateEntries {
		s := fmt.Sprintf("%x", e.SerialNumber)
		c.Revoked = append(c.Revoked, Revoked{Name: names[s], Serial: s, Reason: ReasonName(e.ReasonCode), When: e.RevocationTime})
	}
	return c, nil
}

// ReadNames reads revoked.json: serial to certificate name. A missing
// file is an empty map.
func readNames(path string) (map[string]string, error) {
	data, err := regular.ReadFile(path, regular.MaxCRL)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	var list []Revoked
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := make(map[string]string, len(list))
	for _, r := range list {
		m[r.Serial] = r.Name
	}
	return m, nil
}

// CRLStale reports whether a CRL is due to be signed again: past half of
// its life, so that a cron run that fails for a while still leaves a
// current CRL on every member.
func CRLStale(c *CRL, now time.Time) bool {
	life := c.NextUpdate.Sub(c.ThisUpdate)
	return !now.Before(c.ThisUpdate.Add(life / 2))
}

// NodeEnv returns the path of node's etcd.env.
func (p Paths) NodeEnv(node string) string { return filepath.Join(p.NodeDir(node), EnvFile) }

// EnvCertDir is the bundle directory whose crl.der the etcd.env at path
// names: NodeCertDir beside NodeEnv. "" when path is no node's etcd.env.
func EnvCertDir(path string) string {
	if filepath.Base(path) != EnvFile {
		return ""
	}
	return filepath.Join(filepath.Dir(path), "etcd")
}

// NodeStore is the atomic store of node's etcd/ directory: its ca.crt,
// pairs and CRL (the store of each of its targets' CAStore).
func (p Paths) NodeStore(node string) atomicdir.Store {
	return atomicdir.Store{Dir: p.NodeCertDir(node), Name: node}
}

// ReadCACRL reads the CA's CRL and its names through the CA's store, so a
// crash that left a link missing reads the version in effect: the DER
// bytes, the parsed list (nil when there is none yet) and revoked.json.
// A CRL that does not parse is an input error naming the file.
func ReadCACRL(p Paths) (data []byte, c *CRL, names []byte, err error) {
	data, err = atomicdir.Read(p.CADir(), CRLFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, readError(p.CRL(), err)
	}
	l, err := ParseCRL(data)
	if err != nil {
		return nil, nil, nil, input.Errorf("%s: %v", p.CRL(), err)
	}
	names, err = atomicdir.Read(p.CADir(), RevokedFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, readError(p.Revoked(), err)
	}
	byName := map[string]string{}
	if len(names) > 0 {
		var list []Revoked
		if err := json.Unmarshal(names, &list); err != nil {
			return nil, nil, nil, input.Errorf("%s: %v", p.Revoked(), err)
		}
		for _, r := range list {
			byName[r.Serial] = r.Name
		}
	}
	c = &CRL{Path: p.CRL(), Number: l.Number, ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate, List: l}
	for _, e := range l.RevokedCertificateEntries {
		s := fmt.Sprintf("%x", e.SerialNumber)
		c.Revoked = append(c.Revoked, Revoked{Name: byName[s], Serial: s, Reason: ReasonName(e.ReasonCode), When: e.RevocationTime})
	}
	return data, c, names, nil
}

// LoadCRL is the CA's CRL as ReadCACRL reads it; nil when there is none yet.
func LoadCRL(p Paths) (*CRL, error) {
	_, c, _, err := ReadCACRL(p)
	return c, err
}
