package pki

import (
	"fmt"
	"strings"
	"time"
)

// StatusRevoked is the status of a row of certs list that is a revoked
// serial rather than a certificate in place.
const StatusRevoked = "revoked"

// CRLRow is the name of the CRL's row in certs list.
const CRLRow = "crl"

// BundleCRLError is a node bundle whose etcd.env names a CRL that is
// missing or does not parse (its member would refuse every connection),
// or a CA's crl.der or revoked.json that does not parse.
type BundleCRLError struct{ Problems []string }

func (e *BundleCRLError) Error() string {
	return "CRL: " + strings.Join(e.Problems, "; ")
}

// ExitCode is 1: a failed check.
func (e *BundleCRLError) ExitCode() int { return 1 }

// WithCRL completes certs list's rows with the CRL: a certificate whose
// own serial is revoked becomes invalid, a row for the CRL itself
// (next update as its expiry: due past half its life, expired past it),
// and a row per revoked serial (name, serial, reason, when). A node
// bundle whose config names a missing or unparsable CRL gets an invalid
// row and a *BundleCRLError: the rows are still complete.
func WithCRL(inv *Inventory, infos []CertInfo, now time.Time) ([]CertInfo, error) {
	p := inv.Paths
	_, crl, _, err := ReadCACRL(p)
	row := CertInfo{Name: CRLRow, CA: "-", Path: p.CRL(), Status: StatusOK}
	var problems []string
	switch {
	case err != nil:
		// The CA's crl.der or revoked.json is corrupt: the next CRL is
		// signed from them, so the listing fails (exit 1) naming the file.
		row.Status, row.Reason = StatusInvalid, err.Error()
		problems = append(problems, err.Error())
	case crl == nil:
		row.Status, row.Reason = StatusMissing, "no CRL yet (etcdpki init or rotate writes one)"
	default:
		row.NotBefore, row.Expires = crl.ThisUpdate, crl.NextUpdate
		if left := crl.NextUpdate.Sub(now); left > 0 {
			row.ResidualSeconds = int64(left.Seconds())
			row.Residual = Residual(left)
		}
		row.Serial = fmt.Sprintf("number %v", crl.Number)
		row.Reason = fmt.Sprintf("%d revoked", len(crl.Revoked))
		switch {
		case !now.Before(crl.NextUpdate):
			row.Status, row.Reason = StatusExpired, row.Reason+"; past its next update (etcdpki rotate signs it again)"
		case CRLStale(crl, now):
			row.Status, row.Reason = StatusDue, row.Reason+"; past half its life (etcdpki rotate signs it again)"
		}
	}
	for i := range infos {
		if e, ok := crl.Entry(infos[i].Serial); ok && infos[i].Target != nil {
			infos[i].Status = StatusInvalid
			infos[i].Reason = fmt.Sprintf("revoked (%s, %s): etcdpki certs renew %s", e.Reason, e.When.UTC().Format(time.DateOnly), infos[i].Name)
		}
	}
	out := append(infos, row)
	for _, n := range inv.Spec.Nodes {
		if prob := p.BundleCRLProblem(n.Name); prob != "" {
			problems = append(problems, n.Name+": "+prob)
			out = append(out, CertInfo{Name: n.Name + "/" + CRLRow, CA: "-", Path: p.NodeCRL(n.Name), Status: StatusInvalid, Reason: prob})
		}
	}
	if crl != nil {
		for _, r := range crl.Revoked {
			name := r.Name
			if name == "" {
				name = "serial " + ShortSerial(r.Serial)
			}
			out = append(out, CertInfo{Name: "revoked " + name, Subject: "serial " + ShortSerial(r.Serial), CA: "-", Serial: r.Serial, Status: StatusRevoked,
				Reason: fmt.Sprintf("%s, revoked %s", r.Reason, r.When.UTC().Format(time.RFC3339)), Path: p.CRL()})
		}
	}
	if len(problems) > 0 {
		return out, &BundleCRLError{Problems: problems}
	}
	return out, nil
}
