package runner

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// newRevoke checks the request against the PKI directory and journals
// it; nil when there is nothing to do. Every check that can refuse the
// request runs before the journal is written: a refusal (exit 2) leaves
// nothing behind, and what fails after the journal is a step to finish
// (exit 1, see unfinishedError).
func (r *Runner) newRevoke(o RevokeRequest, j *RevokeJournal, res *RevokeResult) (*RevokeJournal, error) {
	s := r.Inv.Spec
	crl, err := pki.LoadCRL(r.Inv.Paths)
	if err != nil {
		return nil, err
	}
	if err := r.revokePreflight(o); err != nil {
		return nil, err
	}
	j.Started, j.Old = r.Cfg.Now().UTC(), map[string]string{}
	if len(o.Targets) > 0 {
		err = r.checkTargets(o, j)
	} else {
		err = r.checkSerials(o, j, crl)
	}
	if err != nil {
		return nil, err
	}
	if len(j.Entries) == 0 {
		res.Unchanged = true
		return nil, nil
	}
	r.Journal.Revoke = j
	if err := r.Journal.Save(s.PKIDir, r.Cfg.Now()); err != nil {
		return nil, err
	}
	r.Log.Report(Event{Target: strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", "),
		Message: fmt.Sprintf("revoking %s (reason %s); journal %s", strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", "), j.Reason, StatePath(s.PKIDir))})
	return j, nil
}

// revokePreflight checks what the steps after the journal need: every
// node's deploy command (the CRL changes in every bundle), the templates
// of the deploys, and for targets a renewal that may happen (no CA
// rotation in progress, a backup directory that can take the old pairs).
func (r *Runner) revokePreflight(o RevokeRequest) error {
	s, p := r.Inv.Spec, r.Inv.Paths
	if !s.Local {
		for _, n := range s.Nodes {
			if n.Deploy == "" {
				return &input.Error{Err: fmt.Errorf("node %s: the CRL changes in its bundle but the spec has no deploy command to copy it to %s (set nodes[].deploy)", n.Name, n.Dir)}
			}
		}
	}
	all := &Rollout{}
	for _, n := range s.Nodes {
		all.Nodes = append(all.Nodes, &NodePlan{Node: n})
	}
	if err := DeployCommands(p, all); err != nil {
		return &input.Error{Err: err}
	}
	if len(o.Targets) == 0 {
		return nil
	}
	if next, err := pki.LoadNextCA(p); err != nil {
		return err
	} else if next != nil {
		return input.Errorf("certs revoke: a CA rotation is in progress (%s holds the next CA), and a revoked certificate in use is replaced first: finish it with etcdpki ca rotate, or revoke a serial no longer in use (--serial)", p.NextCADir())
	}
	if err := issue.CheckBackupRoot(p.Backups()); err != nil {
		return err
	}
	if _, err := revokePlan(r.Inv, o.Targets); err != nil {
		return &input.Error{Err: err}
	}
	return nil
}

// checkTargets fills j with the targets to revoke: each one's serial on
// disk, unless it already replaced a revoked one (without --force).
func (r *Runner) checkTargets(o RevokeRequest, j *RevokeJournal) error {
	for _, t := range o.Targets {
		c, err := ReadCert(t.CertPath())
		if err != nil {
			return &input.Error{Err: fmt.Errorf("certs revoke %s: certificate %s: %w", t.ID, t.ID, err)}
		}
		serial := certx.Serial(c)
		if prev := r.Journal.Replaced[t.ID]; prev == serial && !o.Force {
			r.Log.Step(StepCheck, t.ID).Serial(serial).Skipped("%s: already revoked; serial %s in effect replaced it: nothing changed (--force revokes this one too)", t.ID, pki.ShortSerial(serial))
			continue
		}
		j.Targets = append(j.Targets, t.ID)
		j.Old[t.ID] = serial
		j.Entries = append(j.Entries, pki.Revoked{Name: t.ID, Serial: serial, Reason: j.Reason, When: j.Started, NotAfter: c.NotAfter.UTC()})
	}
	j.Step = StepRenew
	return nil
}

// checkSerials fills j with the serials to revoke. The PKI directory is
// walked once for all of them (serialIndex). A CA's own serial is
// refused even with --force: a CRL naming it makes every member refuse
// every client that sends its chain, and nothing un-revokes.
func (r *Runner) checkSerials(o RevokeRequest, j *RevokeJournal, crl *pki.CRL) error {
	s, inv := r.Inv.Spec, r.Inv
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return err
	}
	cas, err := caSerials(inv)
	if err != nil {
		return err
	}
	inUse := map[string]string{}
	for _, t := range inv.Targets {
		if serial, err := DiskSerial(t); err == nil {
			inUse[serial] = t.ID
		}
	}
	idx, err := indexSerials(s.PKIDir)
	if err != nil {
		return err
	}
	for _, serial := range o.Serials {
		if where, ok := cas[serial]; ok {
			return input.Errorf("--serial %s: it is the serial of a CA (%s): revoking it would make every member refuse every client that sends its chain, with no way back; a CA is retired by etcdpki ca rotate", serial, where)
		}
		if id, ok := inUse[serial]; ok {
			return input.Errorf("--serial %s: it is %s, in use: revoke it by name (etcdpki certs revoke %s), which replaces it first", serial, id, id)
		}
		if e, ok := crl.Ever(serial); ok {
			r.Log.Step(StepCheck, serial).Serial(serial).Skipped("serial %s: already revoked on %s (%s): nothing changed", serial, e.When.UTC().Format(time.RFC3339), e.Reason)
			continue
		}
		if slices.Contains(j.Serials, serial) {
			continue
		}
		e := pki.Revoked{Serial: serial, Reason: j.Reason, When: j.Started}
		f, err := idx.issuedHere(s.PKIDir, serial, authority)
		switch {
		case err != nil && !o.Force:
			return input.Errorf("--serial %s: %v (--force revokes it anyway)", serial, err)
		case err == nil:
			e.NotAfter = f.cert.NotAfter.UTC()
		}
		j.Serials = append(j.Serials, serial)
		j.Entries = append(j.Entries, e)
	}
	if len(j.Entries) > 0 && crl != nil {
		// Entries older than the notAfter field learn it from a kept
		// certificate of this CA, so that they too leave the CRL once
		// expired (pki.CRLKeeps); the CRL is signed anyway.
		for _, e := range append(slices.Clone(crl.Revoked), crl.History...) {
			if f := idx[e.Serial]; e.NotAfter.IsZero() && f != nil && f.cert.CheckSignatureFrom(authority.Cert) == nil {
				e.NotAfter = f.cert.NotAfter.UTC()
				j.Entries = append(j.Entries, e)
			}
		}
	}
	j.Step = StepPublish
	return nil
}

// caSerials are the serials of every CA this PKI holds or trusts: the
// CA's ca.crt (old and new during a CA rotation), the next CA, and the CA
// bundle of every node, each with the file it is in.
func caSerials(inv *pki.Inventory) (map[string]string, error) {
	p := inv.Paths
	out := map[string]string{}
	authority, err := pki.LoadCA(p)
	if err != nil {
		return nil, err
	}
	out[certx.Serial(authority.Cert)] = p.CACert()
	next, err := pki.LoadNextCA(p)
	if err != nil {
		return nil, err
	}
	if next != nil {
		out[certx.Serial(next.Cert)] = p.NextCACert()
	}
	paths := []string{p.CACert()}
	for _, n := range inv.Spec.Nodes {
		paths = append(paths, filepath.Join(p.NodeCertDir(n.Name), pki.CAFile))
	}
	for _, path := range paths {
		certs, err := pki.ReadCAs(path)
		if err != nil {
			continue // a bundle not issued yet, or one verify reports
		}
		for _, c := range certs {
			if _, ok := out[certx.Serial(c)]; !ok {
				out[certx.Serial(c)] = path
			}
		}
	}
	return out, nil
}
