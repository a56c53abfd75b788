package carotate

import (
	"fmt"
	"io"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// printPlan is --dry-run: the four stages, where the files stand, what
// each would do, member by member.
func (cr *caRun) printPlan(w io.Writer) {
	s := cr.inv.Spec
	rot := cr.rot
	stage := rot.Stage
	if stage == "" {
		stage = "none (no CA rotation in progress)"
	}
	fmt.Fprintf(w, "CA rotation of %s: files at stage %s\n", s.PKIDir, stage)
	fmt.Fprintf(w, "  CA in effect: %q %s, serial %s, valid until %s\n", rot.Old.Cert.Subject.CommonName, certx.KeyDescription(rot.Old.Cert.PublicKey),
		pki.ShortSerial(certx.Serial(rot.Old.Cert)), rot.Old.Cert.NotAfter.Format(time.DateOnly))
	var j *runner.CAJournal
	if rot.InProgress() {
		fmt.Fprintf(w, "  next CA:      %q %s, serial %s, valid until %s\n", rot.Next.Cert.Subject.CommonName, certx.KeyDescription(rot.Next.Cert.PublicKey),
			pki.ShortSerial(certx.Serial(rot.Next.Cert)), rot.Next.Cert.NotAfter.Format(time.DateOnly))
		if st := cr.r.Journal.CA; st != nil && st.Next == certx.Serial(rot.Next.Cert) {
			j = st
		}
	}
	status := func(name string) string {
		switch {
		case name == pki.CAStagePrepare && rot.InProgress():
			return "done"
		case j != nil && !j.Done[name].IsZero():
			return "done " + j.Done[name].Format(time.RFC3339)
		case rot.InProgress() && pki.CAStageIndex(rot.Stage) > pki.CAStageIndex(name):
			return "done"
		case rot.Stage == name:
			return "in progress"
		}
		return "to do"
	}
	member := func(name, who string) string {
		if j != nil {
			if p, ok := j.Proofs[name][who]; ok {
				return "proven " + p.At.Format(time.RFC3339)
			}
		}
		return "to do"
	}
	var nodes []string
	for _, n := range s.Nodes {
		nodes = append(nodes, n.Name)
	}
	cps, _ := cr.clientPlans()
	clients := func(name string) {
		for _, cp := range cps {
			how := "restart: " + cp.RestartCmd
			if cp.RestartCmd == "" {
				how = "no restart template: restart it by hand on its hosts, then run again with --clients-restarted"
			}
			fmt.Fprintf(w, "       client %s: %s (%s)\n", cp.Client.Name, how, member(name, "client/"+cp.Client.Name))
		}
	}
	fmt.Fprintf(w, "1. prepare (%s): create the next CA from the spec's ca settings (%s %d, valid %s) in %s; nothing deployed\n",
		status(pki.CAStagePrepare), s.CA.Key.Algorithm, s.CA.Key.Size, cluster.FormatDuration(s.CA.Validity), cr.paths.NextCADir())
	fmt.Fprintf(w, "2. trust-both (%s): every bundle's ca.crt = old CA + new CA (%d bundles); deploy; rolling restart, followers first, one hand-off\n",
		status(pki.CAStageTrustBoth), len(cr.bundleStores()))
	fmt.Fprintln(w, "   proof per member: a probe client certificate from the NEW CA accepted on its client and peer ports")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(pki.CAStageTrustBoth, n))
	}
	fmt.Fprintln(w, "   then every client restarts (it reads its CA file only at start):")
	clients(pki.CAStageTrustBoth)
	fmt.Fprintf(w, "3. reissue (%s): every leaf (%d) issued again from the new CA; no restart\n", status(pki.CAStageReissue), len(cr.inv.Targets))
	fmt.Fprintln(w, "   proof per member: both ports serve the new leaves, from the new CA; its new peer cert accepted by another member; clients' new certs accepted")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(pki.CAStageReissue, n))
	}
	fmt.Fprintf(w, "4. finish (%s): every bundle's ca.crt = new CA only; deploy; rolling restart, one hand-off\n", status(pki.CAStageFinish))
	fmt.Fprintln(w, "   proof per member: a probe from the OLD CA refused and one from the NEW CA accepted, on its client and peer ports")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(pki.CAStageFinish, n))
	}
	fmt.Fprintln(w, "   then every client restarts:")
	clients(pki.CAStageFinish)
	fmt.Fprintf(w, "   then the old CA goes to %s/ca-SERIAL (key 0400) and the new CA becomes %s\n", cr.paths.Backups(), cr.paths.CADir())
	if cr.o.Until != "" {
		fmt.Fprintf(w, "--until %s: the run stops after stage %s\n", cr.o.Until, cr.o.Until)
	}
}
