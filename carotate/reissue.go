package carotate

// The reissue stage of a CA rotation: every leaf issued again from the
// new CA, proven in effect on the wire without a restart.

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// reissue issues every leaf again from the new CA and proves each member
// serving its new leaves, without a restart: every member trusts both
// CAs since trust-both, and etcd loads renewed leaves at its next
// handshake.
func (cr *caRun) reissue(ctx context.Context, sr *StageResult) (bool, error) {
	const stage = pki.CAStageReissue
	if cr.stageDone(stage) {
		cr.step(stage, "").Done("%s: done", stage)
		return true, nil
	}
	if cr.journal().Done[pki.CAStageTrustBoth].IsZero() && cr.rot.Stage != stage {
		return false, fmt.Errorf("%s: stage trust-both is not proven yet", stage)
	}
	if err := cr.reissueLeaves(ctx); err != nil {
		return false, err
	}
	if err := cr.resignCRL(ctx, stage); err != nil {
		return false, err
	}
	cr.rot.Stage = stage
	p, err := cr.memberPlan(stage)
	if err != nil {
		return false, err
	}
	if err := cr.deploy(ctx, p); err != nil {
		return false, err
	}
	bg := context.WithoutCancel(ctx)
	h, err := cr.r.Etcd.Health(bg)
	if err != nil {
		return false, err
	}
	if err := runner.HealthyOrError(cr.inv.Spec, h, "refusing to go on with stage "+stage); err != nil {
		return false, err
	}
	for i, np := range p.Nodes {
		if err := ctx.Err(); err != nil {
			return false, &runner.InterruptedError{Step: "proving " + np.Node.Name}
		}
		pr, err := cr.proveReissued(bg, np, h.Leader)
		if err != nil {
			return false, err
		}
		sr.Proven = append(sr.Proven, np.Node.Name)
		cr.step(stage, np.Node.Name).Count(i+1, len(p.Nodes)).Serial(pr.ServerSerial).Took(pr.Took).Done("%s [%d/%d] %s: in effect without restart: client port serves %s, peer port serves %s (both from the new CA), its peer cert accepted by %s (%d ms)",
			stage, i+1, len(p.Nodes), np.Node.Name, pki.ShortSerial(pr.ServerSerial), pki.ShortSerial(pr.PeerSerial), noMember(pr.AcceptedBy), pr.Took.Milliseconds())
	}
	if err := cr.proveClientsReissued(bg); err != nil {
		return false, err
	}
	cr.journal().Done[stage] = cr.r.Cfg.Now().UTC()
	if err := cr.save(); err != nil {
		return false, err
	}
	cr.step(stage, "").Done("%s: proven on every member, no restart", stage)
	return false, nil
}

// reissueLeaves issues every leaf not yet from the next CA again from it,
// with every bundle trusting both CAs.
func (cr *caRun) reissueLeaves(ctx context.Context) error {
	const stage = pki.CAStageReissue
	var due []pki.Target
	for _, t := range cr.inv.Targets {
		data, err := regular.ReadFile(t.CertPath(), regular.MaxPEM)
		if err == nil {
			if c, err := ca.ParseCert(data); err == nil && cr.rot.SignedBy(c) == "next" {
				continue
			}
		}
		due = append(due, t)
	}
	if len(due) == 0 {
		return nil
	}
	renewed, err := issue.Renew(context.WithoutCancel(ctx), cr.inv, due, issue.RenewOptions{
		Options:   issue.Options{Out: io.Discard, Now: cr.r.Cfg.Now, LockHeld: true},
		Authority: cr.rot.Next, BundleCA: cr.rot.BundlePEM(stage)})
	if err != nil {
		return fmt.Errorf("%s: %w", stage, err)
	}
	cr.step(stage, "").Done("%s: re-issued %d certificates from the new CA; previous pairs in %s", stage, len(renewed), runner.BackupDir(cr.inv.Spec.PKIDir, renewed))
	return nil
}

// proveReissued proves a member's new leaves in effect without a restart
// (fresh handshakes show the new serials, its peer certificate accepted)
// and, on the wire, that both its ports serve a leaf that verifies
// against the new CA alone; then records the proof.
func (cr *caRun) proveReissued(ctx context.Context, np *runner.NodePlan, leader probe.ID) (runner.ProofResult, error) {
	const stage = pki.CAStageReissue
	serials, err := runner.DiskSerials(np.All)
	if err != nil {
		return runner.ProofResult{}, err
	}
	pr, err := cr.r.Etcd.ProveMember(ctx, np, serials, leader)
	if err != nil {
		return runner.ProofResult{}, err
	}
	nextOnly := probe.CertPool([]*x509.Certificate{cr.rot.Next.Cert})
	issuer := []string{}
	for _, u := range []struct{ name, url string }{{"client port", np.Node.ClientURLs[0]}, {"peer port", np.Node.PeerURLs[0]}} {
		_, addr, _ := probe.ParseEndpoint(u.url)
		pctx, cancel := context.WithTimeout(ctx, runner.ProbeTimeout)
		_, err := probe.ServingCert(pctx, addr, probe.ClientConfig(nextOnly, nil))
		cancel()
		if err != nil {
			return runner.ProofResult{}, &runner.ProofError{Member: np.Node.Name, Port: u.name + " " + addr, Err: fmt.Errorf("does not serve a leaf from the new CA: %w", err)}
		}
		issuer = append(issuer, u.name+" "+addr+" serves a leaf from the new CA")
	}
	for _, t := range np.Targets {
		cr.r.Journal.InEffect[t.ID] = serials[t.ID]
	}
	cr.r.Journal.Proofs[np.Node.Name] = runner.Proof{ServerSerial: pr.ServerSerial, PeerSerial: pr.PeerSerial, AcceptedBy: pr.AcceptedBy,
		At: cr.r.Cfg.Now().UTC(), Took: runner.Round(pr.Took).String()}
	cr.record(stage, np.Node.Name, runner.CAProof{Shown: append([]string{fmt.Sprintf("client port serves %s, peer port serves %s, peer cert accepted by %s",
		pki.ShortSerial(pr.ServerSerial), pki.ShortSerial(pr.PeerSerial), pr.AcceptedBy)}, issuer...)})
	return pr, cr.save()
}

// proveClientsReissued deploys each client's re-issued bundle and proves
// its new certificate accepted with a linearizable read on every client
// port; a client proven before is not asked again.
func (cr *caRun) proveClientsReissued(ctx context.Context) error {
	const stage = pki.CAStageReissue
	cps, err := cr.clientPlans()
	if err != nil {
		return err
	}
	for _, cp := range cps {
		who := "client/" + cp.Client.Name
		if cr.proven(stage, who) {
			continue
		}
		if cp.DeployCmd != "" {
			if err := runner.RunCommand(ctx, "deploy to client "+cp.Client.Name, cp.DeployCmd, cr.r.Cfg.CommandTimeout); err != nil {
				return err
			}
		}
		serial, err := runner.DiskSerial(cp.Target)
		if err != nil {
			return err
		}
		took, err := cr.r.Etcd.ProveClient(ctx, cp, serial)
		if err != nil {
			return err
		}
		cr.r.Journal.InEffect[cp.Target.ID] = serial
		cr.record(stage, who, runner.CAProof{Shown: []string{"new certificate " + pki.ShortSerial(serial) + " accepted with a linearizable read on every client port"}})
		if err := cr.save(); err != nil {
			return err
		}
		cr.step(stage, "client/"+cp.Client.Name).Serial(serial).Took(took).Done("%s: client %s: new certificate %s from the new CA accepted with a linearizable read on every client port (%d ms)", stage, cp.Client.Name, pki.ShortSerial(serial), took.Milliseconds())
	}
	return nil
}

func noMember(s string) string {
	if s == "" {
		return "(no other member)"
	}
	return s
}
