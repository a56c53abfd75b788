package issue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// CRLUpkeep says what KeepCRL did (or, in a dry run, would do).
type CRLUpkeep struct {
	// Resigned is why the CRL was signed again ("" if it was not): there
	// was none, another CA signed it, or it is past half its life.
	Resigned string
	// Bundles are the nodes whose bundle got the CRL (new or changed).
	Bundles []string
	// Envs are the nodes whose etcd.env was written for the first time
	// (a PKI made before etcdpki wrote them).
	Envs []string
	// CRL is the CA's CRL after the upkeep.
	CRL *pki.CRL
}

// Changed reports whether anything was (or would be) written.
func (u *CRLUpkeep) Changed() bool {
	return u != nil && (u.Resigned != "" || len(u.Bundles) > 0 || len(u.Envs) > 0)
}

// KeepCRL is rotate's upkeep of the CRL: it signs it again when there is
// none, another CA signed it or it is past half its life (so that cron
// keeps it current long before its nextUpdate), copies it into every
// existing node bundle that lacks it or holds another, and writes the
// etcd.env of a node that has an etcd.conf.yml but no etcd.env yet. The
// bundles switch before any etcd.env appears, so no config ever names a
// CRL that is not there. With dryRun it writes nothing. The caller holds
// the lock, and no CA rotation is in progress (it re-signs the CRL itself).
func KeepCRL(ctx context.Context, inv *pki.Inventory, now time.Time, dryRun bool) (*CRLUpkeep, error) {
	s, p := inv.Spec, inv.Paths
	authority, err := pki.LoadCA(p)
	if err != nil {
		return nil, err
	}
	st, err := readCRLState(inv)
	if err != nil {
		return nil, err
	}
	up := &CRLUpkeep{CRL: st.list}
	if !now.Before(authority.Cert.NotAfter) {
		// An expired CA signs nothing usable; the recovery replaces it,
		// and the next run signs the CRL with the new one.
		return up, nil
	}
	up.Resigned = st.resignReason(authority, s.CRLValidity(), now)
	next := st
	if up.Resigned != "" {
		if next, err = st.sign(authority, nil, s.CRLValidity(), now); err != nil {
			return nil, err
		}
		next.list.Path = p.CRL()
		up.CRL = next.list
	}
	pl := &plan{byDir: map[string]*pending{}}
	if up.Resigned != "" {
		pl.add(p.CAStore(), atomicdir.File{Name: pki.CRLFile, Data: next.pem, Mode: atomicdir.CertMode})
		pl.add(p.CAStore(), atomicdir.File{Name: pki.RevokedFile, Data: next.names, Mode: atomicdir.CertMode})
	}
	for _, n := range s.Nodes {
		if !exists(p.NodeCertDir(n.Name)) {
			continue // init writes it with the node's certificates
		}
		// What etcd would read: through the public link.
		if cur, err := regular.ReadFile(p.NodeCRL(n.Name), regular.MaxCRL); err != nil || !bytes.Equal(cur, next.pem) {
			pl.add(p.NodeStore(n.Name), atomicdir.File{Name: pki.CRLFile, Data: next.pem, Mode: atomicdir.CertMode})
			up.Bundles = append(up.Bundles, n.Name)
		}
		if _, err := os.Stat(p.NodeEnv(n.Name)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		old, err := pki.ReadNodeConfig(p.NodeConfig(n.Name))
		if err != nil {
			continue // no config of ours to follow: init writes both
		}
		state := old.InitialClusterState
		if state == "" {
			state = "existing"
		}
		pl.configs = append(pl.configs, atomicdir.File{Name: p.NodeEnv(n.Name), Data: pki.NodeEnv(s, n, state), Mode: configMode})
		up.Envs = append(up.Envs, n.Name)
	}
	if dryRun || !up.Changed() {
		return up, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return nil, err
	}
	var b atomicdir.Batch
	if _, err := pl.write(&b); err != nil {
		b.Abort()
		return nil, fmt.Errorf("write CRL: %w", err)
	}
	return up, nil
}

// resignReason is why the CA's CRL must be signed again by authority, ""
// when it need not be: there is none, another CA signed it, it lacks a
// revocation of the history (never an empty CRL in place of a lost one:
// that would un-revoke every serial on every member), it lists entries
// due to leave, a link is gone, or it is past half its life.
func (st *crlState) resignReason(authority *ca.CA, validity time.Duration, now time.Time) string {
	lost := st.lost(validity, now)
	switch {
	case st.list == nil && len(st.history) > 0:
		return fmt.Sprintf("the CA's %s was missing: rebuilt from %s and the bundles' copies, %d revoked, numbered above %v",
			pki.CRLFile, pki.RevokedFile, lost, st.number)
	case st.list == nil:
		return "there was none"
	case lost > 0:
		return fmt.Sprintf("%d revocations of %s or the bundles' copies were missing from it", lost, pki.RevokedFile)
	case st.expired(validity, now) > 0:
		return fmt.Sprintf("%d of its entries are for certificates expired more than a CRL validity ago: they leave it, and stay in %s", st.expired(validity, now), pki.RevokedFile)
	case st.linkMissing:
		return fmt.Sprintf("the link %s or %s was missing", pki.CRLFile, pki.RevokedFile)
	case !st.signedBy(authority):
		return "another CA signed it"
	case pki.CRLStale(st.list, now):
		return fmt.Sprintf("past half its life (next update %s)", st.list.NextUpdate.UTC().Format(time.RFC3339))
	}
	return ""
}
