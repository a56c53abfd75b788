package carotate

// The stages that restart the cluster, trust-both and finish, and the
// clients around them; reissue is in reissue.go.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// restartStage runs trust-both or finish: bundles, deploy, a rolling
// restart with one hand-off and a proof per member, then the clients.
// stop is true when the run must wait for clients to be restarted by hand.
func (cr *caRun) restartStage(ctx context.Context, stage string, sr *StageResult) (done, stop bool, err error) {
	if finished, done, err := cr.stageLeft(stage); finished || done || err != nil {
		return done, false, err
	}
	bg := context.WithoutCancel(ctx)
	h, err := cr.r.Etcd.Health(bg)
	if err != nil {
		return false, false, err
	}
	if err := runner.HealthyOrError(cr.inv.Spec, h, "refusing to change anything for stage "+stage); err != nil {
		return false, false, err
	}
	if err := cr.writeStageBundles(stage); err != nil {
		return false, false, err
	}
	p, err := cr.memberPlan(stage)
	if err != nil {
		return false, false, err
	}
	if err := cr.deploy(ctx, p); err != nil {
		return false, false, err
	}
	if err := cr.provenWithoutRestart(bg, p, stage, sr); err != nil {
		return false, false, err
	}
	p.SetOrder(cr.inv.Spec, h)
	res := &runner.Tally{}
	err = cr.r.Roll(ctx, p, res, func(ctx context.Context, np *runner.NodePlan) error {
		shown, err := cr.proveTrust(ctx, np.Node, stage)
		if err != nil {
			return err
		}
		cr.record(stage, np.Node.Name, runner.CAProof{Restarted: true, Shown: shown})
		cr.step(stage, np.Node.Name).Done("%s: %s: %s", stage, np.Node.Name, strings.Join(shown, "; "))
		return nil
	})
	sr.Restarted, sr.HandOffs = res.Members, res.HandOffs
	if err != nil {
		return false, false, err
	}
	waiting, err := cr.restartClients(ctx, stage)
	if err != nil {
		return false, false, err
	}
	if len(waiting) > 0 {
		cr.res.WaitingForClients = waiting
		return false, true, nil
	}
	cr.journal().Done[stage] = cr.r.Cfg.Now().UTC()
	if err := cr.save(); err != nil {
		return false, false, err
	}
	cr.step(stage, "").Done("%s: proven on every member (%d restarted, %d hand-offs)", stage, len(res.Members), len(res.HandOffs))
	if stage == pki.CAStageFinish {
		return false, false, cr.retire()
	}
	return false, false, nil
}

// stageLeft handles a stage with nothing left to roll: finished is true
// when only the old CA's retirement was left (and has now run), done
// when the stage was proven before. Before finish it makes sure every
// leaf is from the next CA.
func (cr *caRun) stageLeft(stage string) (finished, done bool, err error) {
	if stage == pki.CAStageFinish && cr.rot.Old.Cert.Equal(cr.rot.Next.Cert) {
		// Only the switch of PKI/etcd was left to finish.
		return true, false, cr.retire()
	}
	if cr.stageDone(stage) {
		if stage == pki.CAStageFinish {
			// Proven, but killed before (or while) the old CA retired.
			return true, false, cr.retire()
		}
		cr.step(stage, "").Done("%s: done", stage)
		return false, true, nil
	}
	if stage == pki.CAStageFinish {
		return false, false, cr.allLeavesFromNext()
	}
	return false, false, nil
}

// writeStageBundles writes every bundle's ca.crt as the stage wants it.
func (cr *caRun) writeStageBundles(stage string) error {
	changed, err := cr.writeBundles(cr.rot.BundlePEM(stage))
	if err != nil {
		return err
	}
	if stage == pki.CAStageTrustBoth {
		cr.step(stage, "").Done("%s: every bundle's ca.crt holds the old CA (serial %s) and the new one (serial %s); %d bundles changed", stage,
			pki.ShortSerial(certx.Serial(cr.rot.Old.Cert)), pki.ShortSerial(certx.Serial(cr.rot.Next.Cert)), changed)
	} else {
		cr.step(stage, "").Serial(certx.Serial(cr.rot.Next.Cert)).Done("%s: every bundle's ca.crt holds the new CA (serial %s) only; %d bundles changed", stage, pki.ShortSerial(certx.Serial(cr.rot.Next.Cert)), changed)
	}
	if cr.rot.Stage == pki.CAStagePrepare || stage == pki.CAStageFinish {
		cr.rot.Stage = stage
	}
	return nil
}

// provenWithoutRestart takes out of the plan every member that already
// shows what the stage wants (a plain rotate restarted it for its changed
// CA bundle, or a killed run did just before it died): it is proven, not
// restarted again. For the others the probe is refused at once.
func (cr *caRun) provenWithoutRestart(ctx context.Context, p *runner.Rollout, stage string, sr *StageResult) error {
	for _, np := range p.Nodes {
		shown, perr := cr.proveTrust(ctx, np.Node, stage)
		if perr != nil {
			continue
		}
		started, ok, err := runner.StartedNow(cr.paths, np.Node)
		if err != nil {
			return err
		}
		if ok {
			cr.r.Journal.Started[np.Node.Name] = started
		}
		cr.record(stage, np.Node.Name, runner.CAProof{Shown: shown})
		if err := cr.save(); err != nil {
			return err
		}
		sr.Proven = append(sr.Proven, np.Node.Name)
		cr.step(stage, np.Node.Name).Done("%s: %s: already runs with its new bundle, no restart: %s", stage, np.Node.Name, strings.Join(shown, "; "))
		np.Restart = false
	}
	p.Nodes = slices.DeleteFunc(p.Nodes, func(np *runner.NodePlan) bool { return !np.Restart })
	return nil
}

// memberPlan lists the members still to go through stage, each to be
// restarted, with its rendered commands.
func (cr *caRun) memberPlan(stage string) (*runner.Rollout, error) {
	s := cr.inv.Spec
	p := &runner.Rollout{}
	targets := cr.inv.Targets
	for _, n := range s.Nodes {
		if cr.proven(stage, n.Name) {
			continue
		}
		np := &runner.NodePlan{Node: n, Restart: true, Reasons: []string{"CA rotation, stage " + stage + ": its CA bundle changed"}}
		np.All = runner.NodeTargets(targets, n.Name)
		np.Targets = np.All
		var err error
		if np.DeployCmd, np.RestartCmd, err = runner.NodeCommands(cr.paths, n); err != nil {
			return nil, err
		}
		p.Nodes = append(p.Nodes, np)
	}
	return p, nil
}

// deploy runs the deploy command of every member still to go through the
// stage.
func (cr *caRun) deploy(ctx context.Context, p *runner.Rollout) error {
	return cr.r.DeployNodes(ctx, p.Nodes)
}

// clientPlans are the clients with a bundle of their own (the apiserver
// and extra clients; the healthcheck client lives in the node bundles).
func (cr *caRun) clientPlans() ([]*runner.ClientPlan, error) {
	s := cr.inv.Spec
	var out []*runner.ClientPlan
	for _, t := range cr.inv.Targets {
		c, ok := s.Client(t.Owner)
		if !ok {
			continue
		}
		cp := &runner.ClientPlan{Client: c, Target: t}
		var err error
		if cp.DeployCmd, cp.RestartCmd, err = runner.ClientCommands(c, t.Dir); err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, nil
}

// restartClients deploys each client's bundle and runs its restart
// template: a client reads its CA file only at start (kube-apiserver's
// --etcd-cafile, any clientv3 user of TLSInfo), and the apiserver's trust
// pool cannot be probed from outside, so its restart is the step. Clients
// without a restart template are returned: the operator restarts them and
// runs again with --clients-restarted.
func (cr *caRun) restartClients(ctx context.Context, stage string) ([]string, error) {
	cps, err := cr.clientPlans()
	if err != nil {
		return nil, err
	}
	var waiting []string
	for _, cp := range cps {
		who := "client/" + cp.Client.Name
		if cr.proven(stage, who) {
			continue
		}
		bg := context.WithoutCancel(ctx)
		if cp.DeployCmd != "" {
			if err := runner.RunCommand(bg, "deploy to client "+cp.Client.Name, cp.DeployCmd, cr.r.Cfg.CommandTimeout); err != nil {
				return nil, err
			}
		}
		if cp.RestartCmd == "" {
			waiting = append(waiting, cp.Client.Name)
			continue
		}
		t0 := time.Now()
		if err := runner.RunCommand(bg, "restart client "+cp.Client.Name, cp.RestartCmd, cr.r.Cfg.CommandTimeout); err != nil {
			return nil, err
		}
		cr.record(stage, who, runner.CAProof{Restarted: true, Shown: []string{"restart command ran"}})
		if err := cr.save(); err != nil {
			return nil, err
		}
		took := time.Since(t0)
		cr.step(stage, "client/"+cp.Client.Name).Took(took).Done("%s: client %s restarted (%s) in %s", stage, cp.Client.Name, cp.RestartCmd, runner.Round(took))
	}
	if len(waiting) == 0 {
		return nil, nil
	}
	if cr.o.ClientsRestarted && !cr.clientsUsed {
		cr.clientsUsed = true
		for _, name := range waiting {
			cr.record(stage, "client/"+name, runner.CAProof{Shown: []string{"restarted by the operator (--clients-restarted)"}})
		}
		cr.step(stage, strings.Join(waiting, ", ")).Done("%s: clients %s restarted by the operator (--clients-restarted)", stage, strings.Join(waiting, ", "))
		return nil, cr.save()
	}
	for _, name := range waiting {
		// Where the client keeps its files on its hosts (clients[].dir),
		// else its bundle here, which is what has to reach them.
		c, _ := cr.inv.Spec.Client(name)
		b, _ := cr.inv.Bundle(name)
		caFile := b.CAPath()
		if c.Dir != "" {
			caFile = b.OnHost(c.Dir, caFile)
		}
		cr.step(stage, "client/"+name).Info("%s: restart client %s on its hosts now (it reads its CA file, %s there, only at start; the spec has no clients[].restart for it)",
			stage, name, caFile)
	}
	cr.step(stage, "").Info("%s: waiting for those restarts: run etcdpki ca rotate again with --clients-restarted once they are done", stage)
	return waiting, nil
}

// allLeavesFromNext refuses to drop the old CA from the bundles while a
// leaf still comes from it.
func (cr *caRun) allLeavesFromNext() error {
	for _, t := range cr.inv.Targets {
		data, err := regular.ReadFile(t.CertPath(), regular.MaxPEM)
		if err != nil {
			return fmt.Errorf("finish: %s: %w", t.ID, err)
		}
		c, err := ca.ParseCert(data)
		if err != nil {
			return fmt.Errorf("finish: %s: %w", t.CertPath(), err)
		}
		if cr.rot.SignedBy(c) != "next" {
			return fmt.Errorf("finish: %s is not from the new CA; run stage reissue first", t.ID)
		}
	}
	return nil
}
