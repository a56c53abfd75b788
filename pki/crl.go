package pki

import (
	"bytes"
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
	// NotAfter is when the revoked certificate expires; zero when it is
	// not known (a --force'd serial, or an entry older than the field).
	// An entry whose certificate expired leaves the CRL (see CRLKeeps)
	// and stays in revoked.json as history.
	NotAfter time.Time `json:"notAfter,omitzero"`
}

// CRLKeeps reports whether a CRL signed at now with this validity still
// lists e. RFC 5280 (3.3) lets a CRL drop an entry once its certificate
// has expired, after one regularly scheduled CRL issued beyond its
// notAfter listed it; a whole validity past notAfter, such a CRL was
// signed (rotate signs again at half its life). An entry whose notAfter
// is not known stays for good: etcd reads the whole CRL on every accepted
// connection, so the list is kept short, but never by guessing.
func CRLKeeps(e Revoked, validity time.Duration, now time.Time) bool {
	return e.NotAfter.IsZero() || now.Before(e.NotAfter.Add(validity))
}

// CRL is a parsed revocation list with the names of its serials.
type CRL struct {
	Path       string    `json:"path"`
	Number     *big.Int  `json:"number"`
	ThisUpdate time.Time `json:"thisUpdate"`
	NextUpdate time.Time `json:"nextUpdate"`
	Revoked    []Revoked `json:"revoked"`
	// History is every revocation revoked.json records, those whose
	// certificate expired and left the CRL among them.
	History []Revoked `json:"history,omitempty"`
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

// Ever reports whether serial was revoked: in the CRL, or in its
// history after its certificate expired.
func (c *CRL) Ever(serial string) (Revoked, bool) {
	if e, ok := c.Entry(serial); ok {
		return e, true
	}
	if c != nil {
		for _, r := range c.History {
			if r.Serial == serial {
				return r, true
			}
		}
	}
	return Revoked{}, false
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
// bytes, the parsed list (nil when there is none) and revoked.json. A
// CRL or revoked.json that does not parse is an input error naming the
// file. Without a CRL, c is nil and names is still returned, for a
// rebuild from the history.
func ReadCACRL(p Paths) (data []byte, c *CRL, names []byte, err error) {
	names, err = ReadStored(p.CADir(), RevokedFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, storedError(p.Revoked(), err)
	}
	history, err := ParseRevokedList(names)
	if err != nil {
		return nil, nil, nil, input.Errorf("%s: %v", p.Revoked(), err)
	}
	data, err = ReadStored(p.CADir(), CRLFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, names, nil
	}
	if err != nil {
		return nil, nil, nil, storedError(p.CRL(), err)
	}
	l, err := ParseCRL(data)
	if err != nil {
		return nil, nil, nil, input.Errorf("%s: %v", p.CRL(), err)
	}
	c = &CRL{Path: p.CRL(), Number: l.Number, ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate, List: l, History: history}
	c.Revoked = entriesOf(l, history)
	return data, c, names, nil
}

// ReadStored reads name in dir like atomicdir.Read (through its public
// link, else from the store's version in effect), but never opens what
// is not a regular file: a FIFO in place of a CRL is refused in one line
// (exit 2), never a blocked read.
func ReadStored(dir, name string) ([]byte, error) {
	data, err := regular.ReadFile(filepath.Join(dir, name), regular.MaxStored)
	if !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	ver, verr := atomicdir.Resolve(dir)
	if verr != nil || ver == "" {
		return atomicdir.Read(dir, name)
	}
	if data, verr := regular.ReadFile(filepath.Join(ver, name), regular.MaxStored); verr == nil || !errors.Is(verr, fs.ErrNotExist) {
		return data, verr
	}
	return nil, err
}

// storedError names path in a read error, unless the error is one
// already (regular's refusal of a FIFO names the file).
func storedError(path string, err error) error {
	var ic input.Coder
	if errors.As(err, &ic) {
		return err
	}
	return readError(path, err)
}

// RevokedHistory is revoked.json: every serial ever revoked, and the
// number of the last CRL signed.
type RevokedHistory struct {
	// CRLNumber is the number of the last CRL signed. RFC 5280 (5.2.3)
	// wants a CA's CRL numbers to only ever grow: a member or a relying
	// party that saw number 7 may take a later CRL numbered 2 for an old
	// one. The next CRL takes a number above this one, the CA's crl.der's
	// and every bundle's copy's, so it never goes back, even when every
	// crl.der is lost. Absent from files written before the field.
	CRLNumber *big.Int  `json:"crlNumber,omitempty"`
	Revoked   []Revoked `json:"revoked"`
}

// ParseRevokedHistory parses revoked.json, as an object or, as written
// before the CRL number was kept in it, a bare list of entries; no bytes
// is an empty history.
func ParseRevokedHistory(data []byte) (RevokedHistory, error) {
	var h RevokedHistory
	data = bytes.TrimSpace(data)
	var err error
	switch {
	case len(data) == 0:
		return h, nil
	case data[0] == '{':
		var raw struct {
			CRLNumber json.RawMessage `json:"crlNumber"`
			Revoked   []Revoked       `json:"revoked"`
		}
		if err = json.Unmarshal(data, &raw); err == nil && raw.CRLNumber != nil {
			h.CRLNumber = new(big.Int)
			if json.Unmarshal(raw.CRLNumber, h.CRLNumber) != nil {
				return RevokedHistory{}, fmt.Errorf("crlNumber %s is not an integer", raw.CRLNumber)
			}
		}
		h.Revoked = raw.Revoked
	default:
		err = json.Unmarshal(data, &h.Revoked)
	}
	if err != nil {
		return RevokedHistory{}, err
	}
	if h.CRLNumber != nil && h.CRLNumber.Sign() < 0 {
		return RevokedHistory{}, fmt.Errorf("crlNumber %v is negative", h.CRLNumber)
	}
	for i, r := range h.Revoked {
		if _, ok := new(big.Int).SetString(r.Serial, 16); !ok {
			return RevokedHistory{}, fmt.Errorf("entry %d: serial %q is not hexadecimal", i+1, r.Serial)
		}
	}
	return h, nil
}

// ParseRevokedList parses revoked.json's entries (ParseRevokedHistory).
func ParseRevokedList(data []byte) ([]Revoked, error) {
	h, err := ParseRevokedHistory(data)
	return h.Revoked, err
}

// entriesOf are a parsed CRL's entries, completed (name, notAfter) from
// the history in revoked.json.
func entriesOf(l *x509.RevocationList, history []Revoked) []Revoked {
	known := make(map[string]Revoked, len(history))
	for _, r := range history {
		known[r.Serial] = r
	}
	out := make([]Revoked, 0, len(l.RevokedCertificateEntries))
	for _, e := range l.RevokedCertificateEntries {
		s := fmt.Sprintf("%x", e.SerialNumber)
		k := known[s]
		out = append(out, Revoked{Name: k.Name, Serial: s, Reason: ReasonName(e.ReasonCode), When: e.RevocationTime, NotAfter: k.NotAfter})
	}
	return out
}

// LoadCRL is the CA's CRL as ReadCACRL reads it; nil when there is none yet.
func LoadCRL(p Paths) (*CRL, error) {
	_, c, _, err := ReadCACRL(p)
	return c, err
}
