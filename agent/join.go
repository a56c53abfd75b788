package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// JoinPoll is how often a joining node's agent reads the status while the
// controller adds, and then promotes, its member: status changes do not
// wake the agent (its watch follows the spec and annotations only).
const JoinPoll = 2 * time.Second

// Join steps, as events name them.
const (
	StepJoinTrust  = "join-trust"
	StepJoinReady  = "join-ready"
	StepJoinConfig = "join-config"
	StepJoinStart  = "join-start"
)

// join is a node's part of its own join, level-based from the status and
// the host's files, so a kill at any point is finished by the next pass:
//  1. a fresh host takes the cluster's trust (ca.crt, crl.der) from the
//     trust ConfigMap, and its pairs through CSRs, each key made in
//     memory and written once in its pair's switch;
//  2. it says so in status.members (agentReadyAt): the controller adds
//     the learner and records the initial-cluster etcd returned;
//  3. it writes etcd.conf.yml and etcd.env joining that member list and
//     starts the member with the spec's restart command, once per
//     learner ID (startedID);
//  4. the controller promotes it; from then on the agent's passes are the
//     ordinary ones, which prove the pairs on the wire and report them.
//
// It returns true while the node is joining: the pass ends there.
func (r *agentRun) join(ctx context.Context, ec *v1alpha1.EtcdCluster, a *Agent) (bool, error) {
	m, known := ec.Status.Member(r.o.Owner)
	switch {
	case known && m.State == v1alpha1.MemberJoining, known && m.State == v1alpha1.MemberLearner:
	case known, hasPairs(a):
		// A member, or a host with its pairs from before the controller
		// kept status.members: the ordinary pass.
		return false, nil
	}
	if err := r.seedTrust(ctx, a, ec.Status.CARotation); err != nil {
		return true, err
	}
	for _, p := range a.Pending(nil) {
		rn, err := a.Obtain(ctx, p.Target)
		if err != nil {
			return true, err
		}
		// Reported at once, not yet in effect: a join abandoned from here
		// on still has its serials in the status, for the removal to
		// revoke. The ordinary passes prove them once the member votes.
		entry := v1alpha1.CertificateStatus{ID: rn.Target.ID, Owner: rn.Target.Owner, Serial: rn.NewSerial, NotAfter: &metav1.Time{Time: rn.NotAfter},
			ProvenAt: statusTime(rn.RenewedAt), ProvenBy: v1alpha1.ProvenByAgent, Message: "installed on the joining host; proven once its member votes"}
		if err := r.observe(ctx, entry); err != nil {
			return true, err
		}
	}
	if m.AgentReadyAt == nil {
		err := r.setMember(ctx, func(m *v1alpha1.MemberStatus) { m.AgentReadyAt = statusTime(time.Now()) })
		if err != nil {
			return true, err
		}
		r.log.Step(StepJoinReady, r.o.Owner).Done("%s: certificates on the host, waiting to be added as a learner", r.o.Owner)
		return true, nil
	}
	if m.State != v1alpha1.MemberLearner || m.ID == "" || m.InitialCluster == "" || m.StartedID == m.ID {
		return true, nil
	}
	if err := r.startLearner(ctx, a, m); err != nil {
		return true, err
	}
	return true, r.setMember(ctx, func(x *v1alpha1.MemberStatus) { x.StartedID = m.ID })
}

// hasPairs says every pair of the host is there.
func hasPairs(a *Agent) bool {
	for _, t := range a.Targets {
		if c, _, err := pki.ReadTargetPair(t); err != nil || c == nil {
			return false
		}
	}
	return true
}

// seedTrust gives a fresh bundle the trust ConfigMap's ca.crt and
// crl.der (Agent.SeedTrust).
func (r *agentRun) seedTrust(ctx context.Context, a *Agent, rot *v1alpha1.CARotationStatus) error {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: r.o.Namespace, Name: v1alpha1.TrustConfigMapName(r.o.Cluster)}
	if err := r.call(ctx, func(ctx context.Context) error { return r.cl.Get(ctx, key, &cm) }); err != nil {
		return fmt.Errorf("trust ConfigMap %s: %w", key, err)
	}
	seeded, err := a.SeedTrust([]byte(cm.Data[v1alpha1.TrustCA]), cm.BinaryData[v1alpha1.TrustCRL], rot)
	if err != nil {
		return fmt.Errorf("trust ConfigMap %s: %w", key, err)
	}
	if seeded {
		r.log.Step(StepJoinTrust, r.o.Owner).Done("%s: ca.crt and crl.der from ConfigMap %s installed in %s", r.o.Owner, key, a.Bundle.CADir)
	}
	return nil
}

// startLearner writes the member's configs joining m.InitialCluster and
// runs the node's restart command, as member add's start step does.
func (r *agentRun) startLearner(ctx context.Context, a *Agent, m v1alpha1.MemberStatus) error {
	n, ok := a.node()
	if !ok {
		return fmt.Errorf("node %s is not in the spec", r.o.Owner)
	}
	a.HostLock.Lock()
	err := issue.WriteJoinConfigs(a.Spec, n, r.o.Dir, m.InitialCluster)
	a.HostLock.Unlock()
	if err != nil {
		return err
	}
	r.log.Step(StepJoinConfig, r.o.Owner).Done("%s: etcd.conf.yml and etcd.env written in %s: initial-cluster %s, initial-cluster-state existing", r.o.Owner, r.o.Dir, m.InitialCluster)
	cmd, err := hostRestart(n, r.o.Dir)
	if err != nil {
		return err
	}
	if cmd == "" {
		r.log.Step(StepJoinStart, r.o.Owner).Skipped("%s: the spec has no restart command: start etcd on this host from %s now", r.o.Owner, r.o.Dir)
		return nil
	}
	t0 := time.Now()
	if err := runner.RunCommand(ctx, "start node "+n.Name, cmd, runner.DefaultCommandTimeout); err != nil {
		return err
	}
	r.log.Step(StepJoinStart, r.o.Owner).Took(time.Since(t0)).Done("%s: learner %s started in %s", r.o.Owner, m.ID, runner.Round(time.Since(t0)))
	return nil
}

// hostRestart renders node n's restart template with the paths of its
// host: the bundle and its configs are in dir.
func hostRestart(n cluster.Node, dir string) (string, error) {
	data := cluster.TemplateData{Name: n.Name, IP: n.IP().String(), Bundle: dir, Dir: dir,
		ConfigFile: filepath.Join(dir, filepath.Base(pki.Paths{}.NodeConfig(n.Name))), DataDir: n.DataDir}
	return cluster.RenderTemplate(n.Restart, data)
}

// setMember changes the agent's own fields of its status.members entry.
func (r *agentRun) setMember(ctx context.Context, change func(*v1alpha1.MemberStatus)) error {
	return r.call(ctx, func(ctx context.Context) error {
		return kube.UpdateStatus(ctx, r.cl, r.key, func(ec *v1alpha1.EtcdCluster) error {
			m, ok := ec.Status.Member(r.o.Owner)
			if !ok {
				m = v1alpha1.MemberStatus{Name: r.o.Owner, State: v1alpha1.MemberJoining}
			}
			change(&m)
			ec.Status.SetMember(m)
			return nil
		})
	})
}

// Obtain is Renew's steps (1) to (4) for a node that joins: its member
// does not run yet, so nothing can be proven on the wire; the ordinary
// passes prove and report the pairs once it votes.
func (a *Agent) Obtain(ctx context.Context, t pki.Target) (*Renewal, error) {
	r := &Renewal{Target: t}
	csrPEM, keyPEM, err := ca.NewCSR(t.Request(a.Spec.Leaf))
	if err != nil {
		return r, &StepError{Step: StepKey, Target: t.ID, Err: err}
	}
	certPEM, err := a.Sign(ctx, t, csrPEM)
	if err != nil {
		return r, &StepError{Step: StepSign, Target: t.ID, Err: err}
	}
	if step, err := a.install(t, certPEM, keyPEM, r); err != nil {
		return r, &StepError{Step: step, Target: t.ID, Err: err}
	}
	a.step(StepInstall, t.ID).Serial(r.NewSerial).Done("%s: serial %s installed, valid until %s; proven once the member runs", t.ID,
		pki.ShortSerial(r.NewSerial), r.NotAfter.UTC().Format(time.DateOnly))
	return r, nil
}
