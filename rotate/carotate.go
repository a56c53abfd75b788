package rotate

// The CA rotation (etcdpki ca rotate). etcd reads its trusted CA file only
// at start, and so does kube-apiserver's etcd client, so a new CA reaches a
// running cluster only through restarts, in stages that never leave a
// member and its peers or clients without a CA in common:
//
//	prepare     the next CA is created in PKI/etcd-next; nothing deployed
//	trust-both  every bundle's ca.crt = old CA + new CA; rolling restart;
//	            proof: a probe certificate from the NEW CA is accepted on
//	            each member's client and peer ports; clients restart
//	reissue     every leaf is issued again from the new CA; no restart;
//	            proof: issue 8's proof plus the issuer on both ports
//	finish      every bundle's ca.crt = new CA; rolling restart; proof: a
//	            probe from the OLD CA is refused on both ports, one from
//	            the new CA accepted; clients restart; the old CA key goes
//	            to PKI/backup and the new CA becomes PKI/etcd
//
// Where a run stands is read from the files (issue.ReadCARotation: which
// CAs the bundles hold, which CA signed the leaves); the journal
// (State.CA) records each member's proof in each stage, so a run killed at
// any point resumes without restarting a member that finished its stage.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/issue"
)

// CAOptions control a CA rotation.
type CAOptions struct {
	Spec *cluster.Spec
	// Until stops the run after this stage ("" runs to the end).
	Until string
	// DryRun prints the four stages, where the files stand, and changes
	// nothing.
	DryRun bool
	// ClientsRestarted says the operator restarted, by hand, the clients
	// that have no restart template, so the stage waiting for them may
	// end. It applies to the first stage of the run that waits for them.
	ClientsRestarted bool
	// New starts another rotation although the journal shows the CA in
	// effect is the one the last rotation just put there.
	New bool
	// Out receives the timestamped progress lines.
	Out io.Writer
	// HandOffSettle, MemberTimeout and CommandTimeout as in Options.
	HandOffSettle  time.Duration
	MemberTimeout  time.Duration
	CommandTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CAResult says what a CA rotation run did.
type CAResult struct {
	// Stages are the stages this run worked on, in order.
	Stages []CAStageResult
	// WaitingForClients names the clients to restart by hand before the
	// next run (with --clients-restarted) goes on; the run stopped there.
	WaitingForClients []string
	// Stage is where the files stand at the end ("" when no rotation is
	// in progress: never started, or finished).
	Stage string
	Took  time.Duration
}

// CAStageResult is one stage of a run.
type CAStageResult struct {
	Stage string
	// Done is true when the stage was found finished already.
	Done bool
	// Restarted are the members restarted in this run, Proven those shown
	// in effect without a restart.
	Restarted []MemberResult
	Proven    []string
	HandOffs  []HandOff
	Start     time.Time
	Took      time.Duration
}

// CAJournal is the CA rotation's part of the journal.
type CAJournal struct {
	// Next is the serial of the CA being rolled out: a journal about
	// another CA is stale.
	Next string `json:"nextCASerial"`
	// Proofs maps a stage to the members (node names, or client/NAME)
	// whose part of it is proven.
	Proofs map[string]map[string]CAProof `json:"proofs"`
	// Done maps a stage to when it was proven in full.
	Done map[string]time.Time `json:"stagesDone,omitempty"`
}

// CAProof is what showed one member (or client) through one stage.
type CAProof struct {
	// Restarted is true when this rotation restarted it for the stage.
	Restarted bool `json:"restarted,omitempty"`
	// Shown lists what the handshakes showed, one phrase each.
	Shown []string  `json:"shown"`
	At    time.Time `json:"at"`
}

// checkStage refuses an unknown stage name (an input error: exit 2).
func checkStage(name string) error {
	if name == "" || slices.Contains(issue.CAStages, name) {
		return nil
	}
	return &ca.InputError{Err: fmt.Errorf("--until %q: unknown stage; the stages are %s", name, strings.Join(issue.CAStages, ", "))}
}

// RunCA rotates the etcd CA, stage by stage, resuming where the files and
// the journal say the last run stopped.
func RunCA(ctx context.Context, o CAOptions) (*CAResult, error) {
	if err := checkStage(o.Until); err != nil {
		return nil, err
	}
	ro := Options{Spec: o.Spec, Restart: RestartAlways, Out: o.Out, HandOffSettle: o.HandOffSettle,
		MemberTimeout: o.MemberTimeout, CommandTimeout: o.CommandTimeout, Now: o.Now, DryRun: o.DryRun}
	if err := ro.defaults(); err != nil {
		return nil, err
	}
	s := o.Spec
	cr := &caRun{o: o, r: &runner{o: ro, log: newLogger(ro.Out), etcd: &etcdCluster{spec: s, paths: issue.Paths{PKI: s.PKIDir}}},
		res: &CAResult{}, paths: issue.Paths{PKI: s.PKIDir}}
	if err := cr.checkSpec(); err != nil {
		return nil, err
	}
	start := time.Now()
	if !o.DryRun {
		l, err := acquire(s.PKIDir)
		if err != nil {
			return nil, err
		}
		defer l.release()
	}
	st, err := LoadState(s.PKIDir)
	if err != nil {
		return nil, err
	}
	cr.r.st = st
	if cr.rot, err = issue.ReadCARotation(s); err != nil {
		return nil, err
	}
	if o.DryRun {
		cr.printPlan(ro.Out)
		return cr.res, nil
	}
	err = cr.run(ctx)
	cr.res.Took = time.Since(start)
	if rot, rerr := issue.ReadCARotation(s); rerr == nil {
		cr.res.Stage = rot.Stage
	}
	// LastRun, LastSuccess and LastError are about leaf rotations (the
	// metrics say when one last succeeded): a CA rotation leaves them be.
	if serr := st.save(s.PKIDir, ro.Now()); serr != nil && err == nil {
		err = serr
	}
	return cr.res, err
}

type caRun struct {
	o     CAOptions
	r     *runner
	rot   *issue.CARotation
	res   *CAResult
	paths issue.Paths
	// clientsUsed is set once --clients-restarted let a stage go on.
	clientsUsed bool
}

func (cr *caRun) log(format string, args ...any) { cr.r.log.printf(format, args...) }

// checkSpec refuses, before anything changes, a spec a CA rotation cannot
// work with: every member must be restarted twice, and every changed
// bundle deployed.
func (cr *caRun) checkSpec() error {
	s := cr.o.Spec
	for _, n := range s.Nodes {
		if n.Restart == "" {
			return &ca.InputError{Err: fmt.Errorf("node %s: a CA rotation restarts every member, but the spec has no restart command (set nodes[].restart)", n.Name)}
		}
		if !s.Local && n.Deploy == "" {
			return &ca.InputError{Err: fmt.Errorf("node %s: a CA rotation changes its bundle, but the spec has no deploy command to copy it to %s (set nodes[].deploy)", n.Name, n.Dir)}
		}
	}
	return nil
}

// journal returns the CA rotation's journal for the next CA, starting a
// fresh one when it is about another CA.
func (cr *caRun) journal() *CAJournal {
	st := cr.r.st
	serial := issue.Serial(cr.rot.Next.Cert)
	if st.CA == nil || st.CA.Next != serial {
		st.CA = &CAJournal{Next: serial}
	}
	if st.CA.Proofs == nil {
		st.CA.Proofs = map[string]map[string]CAProof{}
	}
	if st.CA.Done == nil {
		st.CA.Done = map[string]time.Time{}
	}
	return st.CA
}

func (cr *caRun) proven(stage, who string) bool {
	_, ok := cr.journal().Proofs[stage][who]
	return ok
}

func (cr *caRun) record(stage, who string, p CAProof) {
	j := cr.journal()
	if j.Proofs[stage] == nil {
		j.Proofs[stage] = map[string]CAProof{}
	}
	p.At = cr.r.o.Now().UTC()
	j.Proofs[stage][who] = p
}

func (cr *caRun) save() error { return cr.r.st.save(cr.o.Spec.PKIDir, cr.r.o.Now()) }

func stageIndex(stage string) int { return slices.Index(issue.CAStages, stage) }

func (cr *caRun) run(ctx context.Context) error {
	until := cr.o.Until
	if until == "" {
		until = issue.CAStageFinish
	}
	if !cr.rot.InProgress() {
		st := cr.r.st.CA
		if st != nil && st.Next == issue.Serial(cr.rot.Old.Cert) && !st.Done[issue.CAStageFinish].IsZero() && !cr.o.New {
			cr.log("nothing to do: the CA rotation to %s (serial %s) finished at %s; to replace this CA too, run again with --new",
				cr.rot.Old.Cert.Subject.CommonName, short(st.Next), st.Done[issue.CAStageFinish].Format(time.RFC3339))
			return nil
		}
	}
	for _, stage := range issue.CAStages {
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "CA rotation stage " + stage}
		}
		sr := CAStageResult{Stage: stage, Start: time.Now()}
		var (
			stop bool
			err  error
		)
		switch stage {
		case issue.CAStagePrepare:
			sr.Done, err = cr.prepare()
		case issue.CAStageTrustBoth, issue.CAStageFinish:
			sr.Done, stop, err = cr.restartStage(ctx, stage, &sr)
		case issue.CAStageReissue:
			sr.Done, err = cr.reissue(ctx, &sr)
		}
		sr.Took = time.Since(sr.Start)
		cr.res.Stages = append(cr.res.Stages, sr)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		if stage == until {
			if stage != issue.CAStageFinish {
				cr.log("stopped after stage %s (--until); the next run goes on with stage %s", stage, issue.CAStages[stageIndex(stage)+1])
			}
			return nil
		}
	}
	return nil
}

// prepare creates the next CA, from the spec's CA settings as they are
// now (a changed ca.keyAlgorithm or keySize takes effect here), in an
// atomic store of its own: a crash leaves it whole or absent.
func (cr *caRun) prepare() (bool, error) {
	if cr.rot.InProgress() {
		cr.log("prepare: done: next CA %q (%s, serial %s) in %s", cr.rot.Next.Cert.Subject.CommonName,
			ca.KeyDescription(cr.rot.Next.Cert.PublicKey), short(issue.Serial(cr.rot.Next.Cert)), cr.paths.NextCADir())
		return true, nil
	}
	next, err := ca.Create(cr.o.Spec.CA, cr.r.o.Now())
	if err != nil {
		return false, err
	}
	if _, err := atomicdir.Update(cr.paths.NextCADir(), []atomicdir.File{
		{Name: "ca.crt", Data: next.CertPEM, Mode: atomicdir.CertMode},
		{Name: "ca.key", Data: next.KeyPEM, Mode: atomicdir.CAKeyMode},
	}, checkCAFiles); err != nil {
		return false, fmt.Errorf("prepare: write the next CA: %w", err)
	}
	cr.rot.Next, cr.rot.Stage = next, issue.CAStagePrepare
	cr.journal()
	if err := cr.save(); err != nil {
		return false, err
	}
	cr.log("prepare: created the next CA %q (%s, serial %s, valid until %s) in %s; nothing deployed", next.Cert.Subject.CommonName,
		ca.KeyDescription(next.Cert.PublicKey), short(issue.Serial(next.Cert)), next.Cert.NotAfter.Format(time.DateOnly), cr.paths.NextCADir())
	return false, nil
}

// checkCAFiles vetoes a CA store whose certificate and key do not belong
// together.
func checkCAFiles(files map[string][]byte) error {
	_, err := ca.Parse(files["ca.crt"], files["ca.key"], "CA store")
	return err
}

// bundleDirs are the stores holding a ca.crt: every node's, the
// apiserver's, every extra client's.
func (cr *caRun) bundleDirs() []string {
	var dirs []string
	for _, t := range issue.Targets(cr.o.Spec) {
		if !slices.Contains(dirs, t.CADir) {
			dirs = append(dirs, t.CADir)
		}
	}
	return dirs
}

// writeBundles puts data in every bundle's ca.crt, all in one batch.
func (cr *caRun) writeBundles(data []byte) (int, error) {
	var b atomicdir.Batch
	var results []*atomicdir.Result
	for _, d := range cr.bundleDirs() {
		res, err := b.Update(d, []atomicdir.File{{Name: "ca.crt", Data: data, Mode: atomicdir.CertMode}}, nil)
		if err != nil {
			b.Abort()
			return 0, fmt.Errorf("write %s: %w", filepath.Join(d, "ca.crt"), err)
		}
		results = append(results, res)
	}
	if err := b.Commit(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range results {
		if r.Changed {
			n++
		}
	}
	return n, nil
}

// stageDone reports whether the files have moved past stage, or the
// journal records it proven.
func (cr *caRun) stageDone(stage string) bool {
	if !cr.journal().Done[stage].IsZero() {
		return true
	}
	return stageIndex(cr.rot.Stage) > stageIndex(stage)
}

// restartStage runs trust-both or finish: bundles, deploy, a rolling
// restart with one hand-off and a proof per member, then the clients.
// stop is true when the run must wait for clients to be restarted by hand.
func (cr *caRun) restartStage(ctx context.Context, stage string, sr *CAStageResult) (done, stop bool, err error) {
	s := cr.o.Spec
	if stage == issue.CAStageFinish && cr.rot.Old.Cert.Equal(cr.rot.Next.Cert) {
		// Only the switch of PKI/etcd was left to finish.
		return false, false, cr.retire()
	}
	if cr.stageDone(stage) {
		if stage == issue.CAStageFinish {
			// Proven, but killed before (or while) the old CA retired.
			return false, false, cr.retire()
		}
		cr.log("%s: done", stage)
		return true, false, nil
	}
	if stage == issue.CAStageFinish {
		if err := cr.allLeavesFromNext(); err != nil {
			return false, false, err
		}
	}
	bg := context.WithoutCancel(ctx)
	h, err := cr.r.etcd.health(bg)
	if err != nil {
		return false, false, err
	}
	if err := healthyOrError(s, h, "refusing to change anything for stage "+stage); err != nil {
		return false, false, err
	}
	changed, err := cr.writeBundles(cr.rot.BundlePEM(stage))
	if err != nil {
		return false, false, err
	}
	if stage == issue.CAStageTrustBoth {
		cr.log("%s: every bundle's ca.crt holds the old CA (serial %s) and the new one (serial %s); %d bundles changed", stage,
			short(issue.Serial(cr.rot.Old.Cert)), short(issue.Serial(cr.rot.Next.Cert)), changed)
	} else {
		cr.log("%s: every bundle's ca.crt holds the new CA (serial %s) only; %d bundles changed", stage, short(issue.Serial(cr.rot.Next.Cert)), changed)
	}
	if cr.rot.Stage == issue.CAStagePrepare || stage == issue.CAStageFinish {
		cr.rot.Stage = stage
	}
	p, err := cr.memberPlan(stage)
	if err != nil {
		return false, false, err
	}
	if err := cr.deploy(ctx, p); err != nil {
		return false, false, err
	}
	// A member that already shows what the stage wants (a plain rotate
	// restarted it for its changed CA bundle, or a killed run did just
	// before it died) is proven, not restarted again. For the others the
	// probe is refused at once.
	for _, np := range p.Nodes {
		shown, perr := cr.proveTrust(bg, np.Node, stage)
		if perr != nil {
			continue
		}
		started, ok, err := startedNow(cr.paths, np.Node)
		if err != nil {
			return false, false, err
		}
		if ok {
			cr.r.st.Started[np.Node.Name] = started
		}
		cr.record(stage, np.Node.Name, CAProof{Shown: shown})
		if err := cr.save(); err != nil {
			return false, false, err
		}
		sr.Proven = append(sr.Proven, np.Node.Name)
		cr.log("%s: %s: already runs with its new bundle, no restart: %s", stage, np.Node.Name, strings.Join(shown, "; "))
		np.Restart = false
	}
	p.Nodes = slices.DeleteFunc(p.Nodes, func(np *NodePlan) bool { return !np.Restart })
	p.order(s, h)
	res := &Result{}
	cr.r.afterRestart = func(ctx context.Context, np *NodePlan) error {
		shown, err := cr.proveTrust(ctx, np.Node, stage)
		if err != nil {
			return err
		}
		cr.record(stage, np.Node.Name, CAProof{Restarted: true, Shown: shown})
		cr.log("%s: %s: %s", stage, np.Node.Name, strings.Join(shown, "; "))
		return nil
	}
	defer func() { cr.r.afterRestart = nil }()
	err = cr.r.roll(ctx, p, res)
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
	cr.journal().Done[stage] = cr.r.o.Now().UTC()
	if err := cr.save(); err != nil {
		return false, false, err
	}
	cr.log("%s: proven on every member (%d restarted, %d hand-offs)", stage, len(res.Members), len(res.HandOffs))
	if stage == issue.CAStageFinish {
		return false, false, cr.retire()
	}
	return false, false, nil
}

// memberPlan lists the members still to go through stage, each to be
// restarted, with its rendered commands.
func (cr *caRun) memberPlan(stage string) (*Plan, error) {
	s := cr.o.Spec
	p := &Plan{}
	targets := issue.Targets(s)
	for _, n := range s.Nodes {
		p.Members = append(p.Members, n.Name)
		if cr.proven(stage, n.Name) {
			continue
		}
		np := &NodePlan{Node: n, Restart: true, Reasons: []string{"CA rotation, stage " + stage + ": its CA bundle changed"}}
		for _, t := range targets {
			if t.Owner == n.Name {
				np.All = append(np.All, t)
			}
		}
		np.Targets = np.All
		data := cluster.TemplateData{Name: n.Name, IP: n.IP().String(), Bundle: cr.paths.NodeDir(n.Name),
			Dir: n.Dir, ConfigFile: cr.paths.NodeConfig(n.Name), DataDir: n.DataDir}
		var err error
		if np.DeployCmd, err = cluster.RenderTemplate(n.Deploy, data); err != nil {
			return nil, &ca.InputError{Err: fmt.Errorf("node %s deploy template: %w", n.Name, err)}
		}
		if np.RestartCmd, err = cluster.RenderTemplate(n.Restart, data); err != nil {
			return nil, &ca.InputError{Err: fmt.Errorf("node %s restart template: %w", n.Name, err)}
		}
		p.Nodes = append(p.Nodes, np)
	}
	return p, nil
}

// deploy runs the deploy command of every member still to go through the
// stage.
func (cr *caRun) deploy(ctx context.Context, p *Plan) error {
	for _, np := range p.Nodes {
		if np.DeployCmd == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "deploying to " + np.Node.Name}
		}
		t0 := time.Now()
		if err := runCommand(context.WithoutCancel(ctx), "deploy to node "+np.Node.Name, np.DeployCmd, cr.r.o.CommandTimeout); err != nil {
			return &MemberError{Member: np.Node.Name, Err: err}
		}
		cr.log("%s: deployed in %s", np.Node.Name, round(time.Since(t0)))
	}
	return nil
}

// clientPlans are the clients with a bundle of their own (the apiserver
// and extra clients; the healthcheck client lives in the node bundles).
func (cr *caRun) clientPlans() ([]*ClientPlan, error) {
	s := cr.o.Spec
	var out []*ClientPlan
	for _, t := range issue.Targets(s) {
		c, ok := s.Client(t.Owner)
		if !ok {
			continue
		}
		cp := &ClientPlan{Client: c, Target: t}
		data := cluster.TemplateData{Name: c.Name, Bundle: t.Dir, Dir: c.Dir}
		var err error
		if cp.DeployCmd, err = cluster.RenderTemplate(c.Deploy, data); err != nil {
			return nil, &ca.InputError{Err: fmt.Errorf("client %s deploy template: %w", c.Name, err)}
		}
		if cp.RestartCmd, err = cluster.RenderTemplate(c.Restart, data); err != nil {
			return nil, &ca.InputError{Err: fmt.Errorf("client %s restart template: %w", c.Name, err)}
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
			if err := runCommand(bg, "deploy to client "+cp.Client.Name, cp.DeployCmd, cr.r.o.CommandTimeout); err != nil {
				return nil, err
			}
		}
		if cp.RestartCmd == "" {
			waiting = append(waiting, cp.Client.Name)
			continue
		}
		t0 := time.Now()
		if err := runCommand(bg, "restart client "+cp.Client.Name, cp.RestartCmd, cr.r.o.CommandTimeout); err != nil {
			return nil, err
		}
		cr.record(stage, who, CAProof{Restarted: true, Shown: []string{"restart command ran"}})
		if err := cr.save(); err != nil {
			return nil, err
		}
		cr.log("%s: client %s restarted (%s) in %s", stage, cp.Client.Name, cp.RestartCmd, round(time.Since(t0)))
	}
	if len(waiting) == 0 {
		return nil, nil
	}
	if cr.o.ClientsRestarted && !cr.clientsUsed {
		cr.clientsUsed = true
		for _, name := range waiting {
			cr.record(stage, "client/"+name, CAProof{Shown: []string{"restarted by the operator (--clients-restarted)"}})
		}
		cr.log("%s: clients %s restarted by the operator (--clients-restarted)", stage, strings.Join(waiting, ", "))
		return nil, cr.save()
	}
	for _, name := range waiting {
		// Where the client keeps its files on its hosts (clients[].dir),
		// else its bundle here, which is what has to reach them.
		c, _ := cr.o.Spec.Client(name)
		caFile := filepath.Join(c.Dir, "etcd", "ca.crt")
		if c.Dir == "" {
			for _, t := range issue.Targets(cr.o.Spec) {
				if t.Owner == name {
					caFile = filepath.Join(t.CADir, "ca.crt")
				}
			}
		}
		cr.log("%s: restart client %s on its hosts now (it reads its CA file, %s there, only at start; the spec has no clients[].restart for it)",
			stage, name, caFile)
	}
	cr.log("%s: waiting for those restarts: run etcdpki ca rotate again with --clients-restarted once they are done", stage)
	return waiting, nil
}

// probeRoots trusts both CAs: a member serves a leaf of either while the
// rotation runs; the probe is about what the member accepts.
func (cr *caRun) probeRoots() *x509.CertPool {
	return probe.CertPool([]*x509.Certificate{cr.rot.Old.Cert, cr.rot.Next.Cert})
}

// proveTrust shows on the wire that member n trusts what stage wants it to
// trust, with fresh handshakes on its client and peer ports presenting
// short-lived probe certificates: in trust-both one from the new CA must
// be accepted; in finish one from the new CA accepted and one from the old
// CA refused.
func (cr *caRun) proveTrust(ctx context.Context, n cluster.Node, stage string) ([]string, error) {
	now := cr.r.o.Now()
	newPair, err := cr.rot.Next.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	roots := cr.probeRoots()
	newCfg := probe.ClientConfig(roots, &newPair)
	_, clientAddr, err := probe.ParseEndpoint(n.ClientURLs[0])
	if err != nil {
		return nil, err
	}
	_, peerAddr, err := probe.ParseEndpoint(n.PeerURLs[0])
	if err != nil {
		return nil, err
	}
	var shown []string
	for _, port := range []struct{ name, addr string }{{"client port", clientAddr}, {"peer port", peerAddr}} {
		if err := acceptedAsClient(ctx, port.addr, newCfg); err != nil {
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
				"refused a probe client certificate from the new CA (serial %s): %w; the member does not trust the new CA, so its restart did not load the new ca.crt "+
					"(check that the deploy copied the bundle to nodes[].dir and that its etcd.conf.yml's trusted-ca-file is that ca.crt), then run etcdpki ca rotate again",
				short(issue.Serial(cr.rot.Next.Cert)), err)}
		}
		shown = append(shown, port.name+" "+port.addr+" accepts the new CA")
	}
	if stage != issue.CAStageFinish {
		return shown, nil
	}
	oldPair, err := cr.rot.Old.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	oldCfg := probe.ClientConfig(roots, &oldPair)
	for _, port := range []struct{ name, addr string }{{"client port", clientAddr}, {"peer port", peerAddr}} {
		err := acceptedAsClient(ctx, port.addr, oldCfg)
		var pe *probe.Error
		switch {
		case err == nil:
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
				"accepted a probe client certificate from the old CA (serial %s): the member still trusts it, so its restart did not load the new ca.crt; "+
					"check the deploy, then run etcdpki ca rotate again", short(issue.Serial(cr.rot.Old.Cert)))}
		case !errors.As(err, &pe) || pe.Kind != probe.KindClientCertRejected:
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf("probe with a certificate from the old CA: %w", err)}
		}
		shown = append(shown, port.name+" "+port.addr+" refuses the old CA")
	}
	return shown, nil
}

// allLeavesFromNext refuses to drop the old CA from the bundles while a
// leaf still comes from it.
func (cr *caRun) allLeavesFromNext() error {
	for _, t := range issue.Targets(cr.o.Spec) {
		data, err := os.ReadFile(t.CertPath())
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

// reissue issues every leaf again from the new CA and proves each member
// serving its new leaves, without a restart: every member trusts both
// CAs since trust-both, and etcd loads renewed leaves at its next
// handshake.
func (cr *caRun) reissue(ctx context.Context, sr *CAStageResult) (bool, error) {
	const stage = issue.CAStageReissue
	s := cr.o.Spec
	if cr.stageDone(stage) {
		cr.log("%s: done", stage)
		return true, nil
	}
	if cr.journal().Done[issue.CAStageTrustBoth].IsZero() && cr.rot.Stage != stage {
		return false, fmt.Errorf("%s: stage trust-both is not proven yet", stage)
	}
	var due []issue.Target
	for _, t := range issue.Targets(s) {
		data, err := os.ReadFile(t.CertPath())
		if err == nil {
			if c, err := ca.ParseCert(data); err == nil && cr.rot.SignedBy(c) == "next" {
				continue
			}
		}
		due = append(due, t)
	}
	if len(due) > 0 {
		renewed, err := issue.Renew(context.WithoutCancel(ctx), s, due, issue.RenewOptions{
			Options:   issue.Options{Out: io.Discard, Now: cr.r.o.Now, LockHeld: true},
			Authority: cr.rot.Next, BundleCA: cr.rot.BundlePEM(stage)})
		if err != nil {
			return false, fmt.Errorf("%s: %w", stage, err)
		}
		cr.log("%s: re-issued %d certificates from the new CA; previous pairs in %s", stage, len(renewed), backupDir(s.PKIDir, renewed))
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
	h, err := cr.r.etcd.health(bg)
	if err != nil {
		return false, err
	}
	if err := healthyOrError(s, h, "refusing to go on with stage "+stage); err != nil {
		return false, err
	}
	nextOnly := probe.CertPool([]*x509.Certificate{cr.rot.Next.Cert})
	for i, np := range p.Nodes {
		if err := ctx.Err(); err != nil {
			return false, &InterruptedError{Step: "proving " + np.Node.Name}
		}
		serials, err := diskSerials(np.All)
		if err != nil {
			return false, err
		}
		pr, err := cr.r.etcd.prove(bg, np, serials, h.Leader)
		if err != nil {
			return false, err
		}
		// The issuer, on the wire: each port's leaf verifies against the
		// new CA alone.
		issuer := []string{}
		for _, u := range []struct{ name, url string }{{"client port", np.Node.ClientURLs[0]}, {"peer port", np.Node.PeerURLs[0]}} {
			_, addr, _ := probe.ParseEndpoint(u.url)
			pctx, cancel := context.WithTimeout(bg, probeTimeout)
			_, err := probe.ServingCert(pctx, addr, probe.ClientConfig(nextOnly, nil))
			cancel()
			if err != nil {
				return false, &ProofError{Member: np.Node.Name, Port: u.name + " " + addr, Err: fmt.Errorf("does not serve a leaf from the new CA: %w", err)}
			}
			issuer = append(issuer, u.name+" "+addr+" serves a leaf from the new CA")
		}
		for _, t := range np.Targets {
			cr.r.st.InEffect[t.ID] = serials[t.ID]
		}
		cr.r.st.Proofs[np.Node.Name] = Proof{ServerSerial: pr.ServerSerial, PeerSerial: pr.PeerSerial, AcceptedBy: pr.AcceptedBy,
			At: cr.r.o.Now().UTC(), Took: round(pr.Took).String()}
		cr.record(stage, np.Node.Name, CAProof{Shown: append([]string{fmt.Sprintf("client port serves %s, peer port serves %s, peer cert accepted by %s",
			short(pr.ServerSerial), short(pr.PeerSerial), pr.AcceptedBy)}, issuer...)})
		if err := cr.save(); err != nil {
			return false, err
		}
		sr.Proven = append(sr.Proven, np.Node.Name)
		cr.log("%s [%d/%d] %s: in effect without restart: client port serves %s, peer port serves %s (both from the new CA), its peer cert accepted by %s (%d ms)",
			stage, i+1, len(p.Nodes), np.Node.Name, short(pr.ServerSerial), short(pr.PeerSerial), noMember(pr.AcceptedBy), pr.Took.Milliseconds())
	}
	cps, err := cr.clientPlans()
	if err != nil {
		return false, err
	}
	for _, cp := range cps {
		who := "client/" + cp.Client.Name
		if cr.proven(stage, who) {
			continue
		}
		if cp.DeployCmd != "" {
			if err := runCommand(bg, "deploy to client "+cp.Client.Name, cp.DeployCmd, cr.r.o.CommandTimeout); err != nil {
				return false, err
			}
		}
		serial, err := diskSerial(cp.Target)
		if err != nil {
			return false, err
		}
		took, err := cr.r.etcd.proveClient(bg, cp, serial)
		if err != nil {
			return false, err
		}
		cr.r.st.InEffect[cp.Target.ID] = serial
		cr.record(stage, who, CAProof{Shown: []string{"new certificate " + short(serial) + " accepted with a linearizable read on every client port"}})
		if err := cr.save(); err != nil {
			return false, err
		}
		cr.log("%s: client %s: new certificate %s from the new CA accepted with a linearizable read on every client port (%d ms)", stage, cp.Client.Name, short(serial), took.Milliseconds())
	}
	cr.journal().Done[stage] = cr.r.o.Now().UTC()
	if err := cr.save(); err != nil {
		return false, err
	}
	cr.log("%s: proven on every member, no restart", stage)
	return false, nil
}

func noMember(s string) string {
	if s == "" {
		return "(no other member)"
	}
	return s
}

// retire makes the new CA the CA in effect, in an order a crash at any
// point leaves resumable: (1) the old CA goes to PKI/backup/ca-SERIAL/
// (written whole or not at all, key 0400); (2) PKI/etcd switches to the
// new CA in one rename; (3) the version of PKI/etcd holding the old key is
// removed, so the old key is out of the active PKI; (4) PKI/etcd-next is
// removed. A re-run after (2) finds PKI/etcd equal to PKI/etcd-next and
// does (3) and (4) only.
func (cr *caRun) retire() error {
	old, next := cr.rot.Old, cr.rot.Next
	caDir := cr.paths.CADir()
	if !old.Cert.Equal(next.Cert) {
		backup := filepath.Join(cr.paths.Backups(), "ca-"+issue.Serial(old.Cert))
		if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
			if _, err := atomicdir.NewDir(backup, []atomicdir.File{
				{Name: "ca.crt", Data: old.CertPEM, Mode: atomicdir.CertMode},
				{Name: "ca.key", Data: old.KeyPEM, Mode: atomicdir.CAKeyMode},
			}); err != nil {
				return fmt.Errorf("finish: back up the old CA: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		if _, err := atomicdir.Update(caDir, []atomicdir.File{
			{Name: "ca.crt", Data: next.CertPEM, Mode: atomicdir.CertMode},
			{Name: "ca.key", Data: next.KeyPEM, Mode: atomicdir.CAKeyMode},
		}, checkCAFiles); err != nil {
			return fmt.Errorf("finish: switch %s to the new CA: %w", caDir, err)
		}
		cr.log("finish: the old CA (serial %s) is in %s (key 0400); %s is the new CA (serial %s)", short(issue.Serial(old.Cert)), backup, caDir, short(issue.Serial(next.Cert)))
	}
	if err := atomicdir.DropOld(caDir); err != nil {
		return fmt.Errorf("finish: remove the old CA key from %s: %w", caDir, err)
	}
	if err := atomicdir.RemoveAll(cr.paths.NextCADir()); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	j := cr.journal()
	if j.Done[issue.CAStageFinish].IsZero() {
		j.Done[issue.CAStageFinish] = cr.r.o.Now().UTC()
	}
	cr.rot.Old, cr.rot.Stage = next, ""
	if err := cr.save(); err != nil {
		return err
	}
	cr.log("finish: CA rotation done: every bundle trusts the new CA only and every leaf is from it")
	return nil
}

// printPlan is --dry-run: the four stages, where the files stand, what
// each would do, member by member.
func (cr *caRun) printPlan(w io.Writer) {
	s := cr.o.Spec
	rot := cr.rot
	stage := rot.Stage
	if stage == "" {
		stage = "none (no CA rotation in progress)"
	}
	fmt.Fprintf(w, "CA rotation of %s: files at stage %s\n", s.PKIDir, stage)
	fmt.Fprintf(w, "  CA in effect: %q %s, serial %s, valid until %s\n", rot.Old.Cert.Subject.CommonName, ca.KeyDescription(rot.Old.Cert.PublicKey),
		short(issue.Serial(rot.Old.Cert)), rot.Old.Cert.NotAfter.Format(time.DateOnly))
	var j *CAJournal
	if rot.InProgress() {
		fmt.Fprintf(w, "  next CA:      %q %s, serial %s, valid until %s\n", rot.Next.Cert.Subject.CommonName, ca.KeyDescription(rot.Next.Cert.PublicKey),
			short(issue.Serial(rot.Next.Cert)), rot.Next.Cert.NotAfter.Format(time.DateOnly))
		if st := cr.r.st.CA; st != nil && st.Next == issue.Serial(rot.Next.Cert) {
			j = st
		}
	}
	status := func(name string) string {
		switch {
		case name == issue.CAStagePrepare && rot.InProgress():
			return "done"
		case j != nil && !j.Done[name].IsZero():
			return "done " + j.Done[name].Format(time.RFC3339)
		case rot.InProgress() && stageIndex(rot.Stage) > stageIndex(name):
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
		status(issue.CAStagePrepare), s.CA.Key.Algorithm, s.CA.Key.Size, cluster.FormatDuration(s.CA.Validity), cr.paths.NextCADir())
	fmt.Fprintf(w, "2. trust-both (%s): every bundle's ca.crt = old CA + new CA (%d bundles); deploy; rolling restart, followers first, one hand-off\n",
		status(issue.CAStageTrustBoth), len(cr.bundleDirs()))
	fmt.Fprintln(w, "   proof per member: a probe client certificate from the NEW CA accepted on its client and peer ports")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(issue.CAStageTrustBoth, n))
	}
	fmt.Fprintln(w, "   then every client restarts (it reads its CA file only at start):")
	clients(issue.CAStageTrustBoth)
	fmt.Fprintf(w, "3. reissue (%s): every leaf (%d) issued again from the new CA; no restart\n", status(issue.CAStageReissue), len(issue.Targets(s)))
	fmt.Fprintln(w, "   proof per member: both ports serve the new leaves, from the new CA; its new peer cert accepted by another member; clients' new certs accepted")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(issue.CAStageReissue, n))
	}
	fmt.Fprintf(w, "4. finish (%s): every bundle's ca.crt = new CA only; deploy; rolling restart, one hand-off\n", status(issue.CAStageFinish))
	fmt.Fprintln(w, "   proof per member: a probe from the OLD CA refused and one from the NEW CA accepted, on its client and peer ports")
	for _, n := range nodes {
		fmt.Fprintf(w, "       %s (%s)\n", n, member(issue.CAStageFinish, n))
	}
	fmt.Fprintln(w, "   then every client restarts:")
	clients(issue.CAStageFinish)
	fmt.Fprintf(w, "   then the old CA goes to %s/ca-SERIAL (key 0400) and the new CA becomes %s\n", cr.paths.Backups(), cr.paths.CADir())
	if cr.o.Until != "" {
		fmt.Fprintf(w, "--until %s: the run stops after stage %s\n", cr.o.Until, cr.o.Until)
	}
}
