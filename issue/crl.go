package issue

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// checkStore is the last check before a store switches: its pairs match
// (checkPairs) and a crl.der in it parses as etcd parses it. A CRL etcd
// cannot parse makes it refuse every new connection, so no such file is
// ever put in effect.
func checkStore(files map[string][]byte) error {
	if data, ok := files[pki.CRLFile]; ok {
		if _, err := pki.ParseCRL(data); err != nil {
			return fmt.Errorf("%s: %w", pki.CRLFile, err)
		}
	}
	return checkPairs(files)
}

// crlState is the CRL as the next write will see it.
type crlState struct {
	pem   []byte
	list  *pki.CRL // nil when there is none yet
	names []byte   // revoked.json
	// history is revoked.json's list, and what the bundles' copies of
	// the CRL revoke besides: a CRL signed from it loses no revocation
	// even when the CA's copy is gone.
	history []pki.Revoked
	// number is the highest CRL number seen, in revoked.json (the last
	// one signed), the CA's copy or any bundle's: the next CRL takes a
	// higher one, so it never goes back (RFC 5280 5.2.3), even when every
	// crl.der is gone.
	number *big.Int
	// linkMissing: the CA's crl.der or revoked.json link is gone although
	// the store holds the file (read through the store).
	linkMissing bool
}

// readCRLState reads the CA's CRL and its names as the next write will
// see them (pki.ReadCACRL), with the history and the highest number from
// revoked.json and every node bundle's copy.
func readCRLState(inv *pki.Inventory) (*crlState, error) {
	p := inv.Paths
	data, c, names, err := pki.ReadCACRL(p)
	if err != nil {
		return nil, err
	}
	st := &crlState{pem: data, list: c, names: names, number: new(big.Int)}
	h, err := pki.ParseRevokedHistory(names)
	if err != nil {
		return nil, input.Errorf("%s: %v", p.Revoked(), err)
	}
	st.history = h.Revoked
	st.number = maxNumber(st.number, h.CRLNumber)
	if c != nil {
		st.merge(c.Revoked)
		st.number = maxNumber(st.number, c.Number)
		for _, name := range []string{pki.CRLFile, pki.RevokedFile} {
			if _, err := os.Lstat(filepath.Join(p.CADir(), name)); err != nil && (name == pki.CRLFile || names != nil) {
				st.linkMissing = true
			}
		}
	}
	for _, n := range inv.Spec.Nodes {
		// A bundle's copy that is missing or does not parse adds nothing;
		// the write replaces it.
		b, err := pki.ReadStored(p.NodeCertDir(n.Name), pki.CRLFile)
		if err != nil {
			continue
		}
		l, err := pki.ParseCRL(b)
		if err != nil {
			continue
		}
		st.number = maxNumber(st.number, l.Number)
		var rs []pki.Revoked
		for _, e := range l.RevokedCertificateEntries {
			rs = append(rs, pki.Revoked{Serial: fmt.Sprintf("%x", e.SerialNumber), Reason: pki.ReasonName(e.ReasonCode), When: e.RevocationTime})
		}
		st.merge(rs)
	}
	return st, nil
}

func maxNumber(a, b *big.Int) *big.Int {
	if b != nil && b.Cmp(a) > 0 {
		return b
	}
	return a
}

// merge adds rs to the history: a serial already there keeps its entry,
// completed with a name or notAfter it lacked.
func (st *crlState) merge(rs []pki.Revoked) {
	for _, r := range rs {
		i := slices.IndexFunc(st.history, func(x pki.Revoked) bool { return x.Serial == r.Serial })
		if i < 0 {
			st.history = append(st.history, r)
			continue
		}
		if st.history[i].Name == "" {
			st.history[i].Name = r.Name
		}
		if st.history[i].NotAfter.IsZero() {
			st.history[i].NotAfter = r.NotAfter
		}
	}
}

// lost are the revocations in the history that the CA's CRL lacks
// although their certificates are still valid: the CA's copy was deleted
// or replaced by hand.
func (st *crlState) lost(validity time.Duration, now time.Time) int {
	n := 0
	for _, r := range st.history {
		if pki.CRLKeeps(r, validity, now) && !st.list.Has(r.Serial) {
			n++
		}
	}
	return n
}

// expired counts the CRL's entries whose certificate expired long
// enough ago to leave it (pki.CRLKeeps).
func (st *crlState) expired(validity time.Duration, now time.Time) int {
	n := 0
	if st.list != nil {
		for _, r := range st.list.Revoked {
			if !pki.CRLKeeps(r, validity, now) {
				n++
			}
		}
	}
	return n
}

// current reports whether the CA's CRL needs no new signature: a signs
// it, its links are in place, it lacks no revocation of the history and
// lists no entry due to leave.
func (st *crlState) current(a *ca.CA, validity time.Duration, now time.Time) bool {
	return st.signedBy(a) && !st.linkMissing && st.lost(validity, now) == 0 && st.expired(validity, now) == 0
}

// signedBy reports whether the CRL was signed by a.
func (st *crlState) signedBy(a *ca.CA) bool {
	return st.list != nil && st.list.List.CheckSignatureFrom(a.Cert) == nil
}

// sign makes the next CRL: the history plus add (a serial already
// revoked keeps its first entry) less the entries whose certificate
// expired (pki.CRLKeeps), numbered above every CRL seen. revoked.json
// keeps the whole history, and the new number.
func (st *crlState) sign(a *ca.CA, add []pki.Revoked, validity time.Duration, now time.Time) (*crlState, error) {
	next := &crlState{history: append([]pki.Revoked{}, st.history...)}
	next.merge(add)
	all := next.history
	sort.SliceStable(all, func(i, j int) bool { return all[i].When.Before(all[j].When) })
	number := new(big.Int).Add(st.number, big.NewInt(1))
	var kept []pki.Revoked
	entries := make([]ca.Revocation, 0, len(all))
	for _, r := range all {
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, input.Errorf("serial %q is not hexadecimal", r.Serial)
		}
		if !pki.CRLKeeps(r, validity, now) {
			continue
		}
		kept = append(kept, r)
		entries = append(entries, ca.Revocation{Serial: n, Reason: pki.Reasons[r.Reason], When: r.When})
	}
	data, err := a.SignCRL(entries, number, validity, now)
	if err != nil {
		return nil, err
	}
	l, err := pki.ParseCRL(data)
	if err != nil {
		return nil, fmt.Errorf("the CRL just signed does not parse back: %w", err)
	}
	if all == nil {
		all = []pki.Revoked{}
	}
	names, err := json.MarshalIndent(pki.RevokedHistory{CRLNumber: l.Number, Revoked: all}, "", "  ")
	if err != nil {
		return nil, err
	}
	next.pem, next.names, next.number = data, append(names, '\n'), l.Number
	next.list = &pki.CRL{Number: l.Number, ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate, Revoked: kept, History: all, List: l}
	return next, nil
}

// addCRL puts the CRL into the CA's store and into the store of every
// node bundle of the plan, so that the crl.der a member's config names is
// in effect before the config is (stores switch before files are renamed).
func (pl *plan) addCRL(p pki.Paths, s *cluster.Spec, st *crlState) {
	pl.add(p.CAStore(), atomicdir.File{Name: pki.CRLFile, Data: st.pem, Mode: atomicdir.CertMode})
	if st.names != nil {
		pl.add(p.CAStore(), atomicdir.File{Name: pki.RevokedFile, Data: st.names, Mode: atomicdir.CertMode})
	}
	for _, n := range s.Nodes {
		pl.add(p.NodeStore(n.Name), atomicdir.File{Name: pki.CRLFile, Data: st.pem, Mode: atomicdir.CertMode})
	}
}

// initCRL is the CRL init writes: the one in place when the CA signed it,
// else a new one (empty for a new PKI) signed by the CA.
func initCRL(inv *pki.Inventory, a *ca.CA, now time.Time) (*crlState, error) {
	s := inv.Spec
	st, err := readCRLState(inv)
	if err != nil {
		return nil, err
	}
	if st.current(a, s.CRLValidity(), now) {
		return st, nil
	}
	return st.sign(a, nil, s.CRLValidity(), now)
}

// CRLResult says what RevokeSerials or ResignCRL did.
type CRLResult struct {
	// Added are the entries new to the CRL.
	Added []pki.Revoked
	// CRL is the CRL now in effect in the PKI directory.
	CRL *pki.CRL
	// Changed is false when nothing was written: every serial was revoked
	// already.
	Changed bool
}

// RevokeSerials adds serials to the CA's CRL and writes it, signed by the
// PKI directory's CA, into the CA's store and every node bundle in one
// batch: each store switches in one rename, after the new CRL was parsed
// back, so no member ever reads a missing or half-written CRL. Serials
// already revoked are left as they are; with nothing new, nothing is
// written.
func RevokeSerials(ctx context.Context, inv *pki.Inventory, add []pki.Revoked, o Options) (*CRLResult, error) {
	return writeCRL(ctx, inv, add, nil, false, o)
}

// ResignCRL signs the CRL again with its entries and a new nextUpdate,
// with authority when set (a CA rotation's new CA) or the PKI directory's
// CA, and writes it like RevokeSerials; unless authority signed it
// already and every bundle holds it, when nothing is written. Serials are
// random and stay unique across CAs, so the entries carry over: every
// revocation survives a new CA.
func ResignCRL(ctx context.Context, inv *pki.Inventory, authority *ca.CA, o Options) (*CRLResult, error) {
	return writeCRL(ctx, inv, nil, authority, false, o)
}

func writeCRL(ctx context.Context, inv *pki.Inventory, add []pki.Revoked, authority *ca.CA, always bool, o Options) (*CRLResult, error) {
	s, p := inv.Spec, inv.Paths
	held, err := o.lock(s.PKIDir)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	if authority == nil {
		if authority, err = pki.LoadCA(p); err != nil {
			return nil, err
		}
	}
	st, err := readCRLState(inv)
	if err != nil {
		return nil, err
	}
	res := &CRLResult{CRL: st.list}
	for _, r := range add {
		// The history holds every serial revoked before, those dropped
		// from the CRL since their certificate expired among them.
		if !slices.ContainsFunc(st.history, func(x pki.Revoked) bool { return x.Serial == r.Serial }) &&
			!slices.ContainsFunc(res.Added, func(x pki.Revoked) bool { return x.Serial == r.Serial }) {
			res.Added = append(res.Added, r)
		}
	}
	if len(res.Added) == 0 && !always && st.current(authority, s.CRLValidity(), o.now()) && nodesHaveCRL(s, p, st.pem) {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// All of add: an entry revoked before keeps its fields, and learns a
	// name or notAfter it lacked.
	next, err := st.sign(authority, add, s.CRLValidity(), o.now())
	if err != nil {
		return nil, err
	}
	next.list.Path = p.CRL()
	pl := &plan{byDir: map[string]*pending{}}
	pl.addCRL(p, s, next)
	// Only bundles that exist: a node not issued yet gets the CRL with
	// its certificates from init.
	pl.stores = slices.DeleteFunc(pl.stores, func(stp *pending) bool { return stp.dir != p.CADir() && !exists(stp.dir) })
	var b atomicdir.Batch
	if _, err := pl.write(&b); err != nil {
		b.Abort()
		return nil, fmt.Errorf("write CRL: %w", err)
	}
	res.CRL, res.Changed = next.list, true
	return res, nil
}

// nodesHaveCRL reports whether every existing node bundle holds crl.
func nodesHaveCRL(s *cluster.Spec, p pki.Paths, crl []byte) bool {
	for _, n := range s.Nodes {
		if !exists(p.NodeCertDir(n.Name)) {
			continue
		}
		data, err := pki.ReadStored(p.NodeCertDir(n.Name), pki.CRLFile)
		if err != nil || string(data) != string(crl) {
			return false
		}
	}
	return true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
