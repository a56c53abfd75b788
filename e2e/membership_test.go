package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/controller"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

// TestMembershipThroughAgents is the membership test, on the
// self-hosted setup under load on etcd and through the apiserver: a 4th
// member joins by starting its agent (learner, then voter, the other
// members' pids unchanged), the joining agent killed -9 once during its
// join; then the first member is removed by deleting it from the spec,
// and its certificates are appended to spec.revocations. In each the
// leading controller is killed -9 at a random step, and the other replica
// finishes.
func TestMembershipThroughAgents(t *testing.T) {
	for i := range faultTrials(t) {
		t.Run(fmt.Sprintf("trial-%d", i+1), func(t *testing.T) { membershipTrial(t) })
	}
}

func membershipTrial(t *testing.T) {
	// From etcd.env: etcd reads a CRL from no config file, and the
	// removed member's certificates must be refused.
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod", FromEnv: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := startEtcdpki(t, e)
	windows := r.apiServerRestarts(t, ctx)
	r.waitMembers(t, ctx, "the three members recorded as voters", func(ec *v1alpha1.EtcdCluster) bool { return votersAre(ec, "etcd-1", "etcd-2", "etcd-3") })
	pids := e.Pids()

	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)
	m4 := r.join(t, ctx)
	r.waitServers(t, ctx, "etcd-1", "etcd-2", "etcd-3", m4.Name)
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(t)
	outsideWindows(t, as, windows)
	after := e.Pids()
	for name, pid := range pids {
		if after[name] != pid {
			t.Errorf("member %s pid %d -> %d: the join restarted it", name, pid, after[name])
		}
	}
	if voters, learners := etcdMembers(t, e); len(voters) != 4 || len(learners) != 0 {
		t.Fatalf("after the join: voters %v, learners %v", voters, learners)
	}
	r.waitMembers(t, ctx, m4.Name+"'s certificates proven by its agent", func(ec *v1alpha1.EtcdCluster) bool {
		n := 0
		for _, c := range ec.Status.Certificates {
			if c.Owner == m4.Name && c.InEffect {
				n++
			}
		}
		return n == 3
	})
	noPrivateKeys(t, r)

	// The removal: the load on the members that stay.
	removedCerts := ownerSerials(r.cluster(t, ctx), "etcd-1")
	// etcd-1's pairs as its host holds them: after the removal each must
	// be refused on every port of the members that stay.
	var held []heldPair
	for serial, id := range removedCerts {
		h := holdPair(t, e, id)
		if h.serial != serial {
			t.Fatalf("%s on disk is serial %s, the status says %s", id, h.serial, serial)
		}
		held = append(held, h)
	}
	etcdLoad = selfhost.StartEtcdLoad(t, []string{e.Etcd.Member("etcd-2").ClientURL, e.Etcd.Member("etcd-3").ClientURL, m4.ClientURL}, e.Etcd.APIServerTLS())
	apiLoad = e.StartAPILoad(t)
	handOff := r.remove(t, ctx, "etcd-1", removedCerts)
	r.waitServers(t, ctx, "etcd-2", "etcd-3", m4.Name)
	es, as = etcdLoad.Stop(), apiLoad.Stop()
	outsideHandOff(t, es, handOff)
	outsideWindows(t, as, windows)
	for _, w := range windows.List() {
		t.Logf("restart window %s: %s - %s (%s)", w.Host, w.Start.Format("15:04:05.000"), w.End.Format("15:04:05.000"), w.End.Sub(w.Start).Round(time.Millisecond))
	}
	if voters, _ := etcdMembers(t, e); slices.Contains(voters, "etcd-1") || len(voters) != 3 {
		t.Errorf("after the removal: voters %v", voters)
	}
	for _, h := range held {
		r.waitMembers(t, ctx, h.id+"'s revocation enforced", func(ec *v1alpha1.EtcdCluster) bool {
			st, ok := ec.Status.Revocation(h.serial)
			return ok && st.Enforced
		})
		checkRefusedOn(t, e, r.Etcd.Spec, h)
	}
}

// join adds etcd-4 to the harness and to the EtcdCluster's spec, starts
// its agent, kills it -9 once its certificates are in and starts it
// again, and kills the leading controller at a random step of the join.
func (r *running) join(t *testing.T, ctx context.Context) *etcdtest.Member {
	t.Helper()
	m4, node := r.Etcd.JoinNode(t, nil)
	r.NodeDirs[m4.Name] = r.Etcd.Paths.NodeDir(m4.Name)
	r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
		s.Nodes = append(s.Nodes, v1alpha1.NodeSpec{Name: node.Name, IPs: node.IPs, ClientPort: node.ClientPort, PeerPort: node.PeerPort,
			Restart: node.Restart, DataDir: m4.DataDir})
	})
	r.waitCondition(t, ctx, controller.ReasonAgentAbsent)
	if voters, _ := etcdMembers(t, r.Env); len(voters) != 3 {
		t.Fatalf("with %s's agent absent: voters %v", m4.Name, voters)
	}
	kc := r.AgentKubeconfig(t, m4.Name)
	args := r.AgentArgs(t, m4.Name, kc, r.ns)
	agent := selfhost.StartEtcdpki(t, "agent-"+m4.Name, args...)
	// The joining agent is killed -9 at a random step (its certificates
	// made, the learner added, the member started) and started again:
	// the next one finds its pairs and the status and goes on. The
	// leading controller is killed -9 at a random step too.
	steps := []string{"ready", v1alpha1.MemberLearner, "started"}
	at := func(step string, ec *v1alpha1.EtcdCluster) bool {
		m, _ := ec.Status.Member(m4.Name)
		switch step {
		case "ready":
			return m.AgentReadyAt != nil
		case "started":
			return m.StartedID != "" && m.StartedID == m.ID
		}
		return m.State == step || m.State == v1alpha1.MemberVoter
	}
	agentStep := steps[rand.IntN(len(steps))]
	r.waitMembers(t, ctx, m4.Name+"'s join at step "+agentStep, func(ec *v1alpha1.EtcdCluster) bool { return at(agentStep, ec) })
	t.Logf("killing %s's agent at step %s", m4.Name, agentStep)
	agent.Kill(t)
	r.agents[m4.Name] = selfhost.StartEtcdpki(t, "agent-"+m4.Name+"-again", args...)
	r.killLeaderAtStep(t, ctx, steps[rand.IntN(len(steps))], at)
	r.waitMembers(t, ctx, m4.Name+" a voter", func(ec *v1alpha1.EtcdCluster) bool { return votersAre(ec, "etcd-1", "etcd-2", "etcd-3", m4.Name) })
	return m4
}

// remove deletes node from the spec and waits until etcd lost it, its
// certificates are in spec.revocations and out of status.certificates,
// killing the leading controller at a random step. It returns when the
// controller handed leadership away from node (zero: it did not lead).
func (r *running) remove(t *testing.T, ctx context.Context, node string, certs map[string]string) time.Time {
	t.Helper()
	if len(certs) != 3 {
		t.Fatalf("%s's certificates in the status before its removal: %v, want 3", node, certs)
	}
	r.Etcd.RemoveNode(t, node)
	r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
		s.Nodes = slices.DeleteFunc(s.Nodes, func(n v1alpha1.NodeSpec) bool { return n.Name == node })
	})
	var handOff time.Time
	seen := func(ec *v1alpha1.EtcdCluster) {
		if m, ok := ec.Status.Member(node); ok && m.HandOffAt != nil {
			handOff = m.HandOffAt.Time
		}
	}
	steps := []string{"deleted", v1alpha1.MemberRemoving, v1alpha1.MemberRemoved}
	r.killLeaderAtStep(t, ctx, steps[rand.IntN(len(steps))], func(step string, ec *v1alpha1.EtcdCluster) bool {
		seen(ec)
		m, ok := ec.Status.Member(node)
		return step == "deleted" || !ok || m.State == step || m.State == v1alpha1.MemberRemoved
	})
	ec := r.waitMembers(t, ctx, node+"'s certificates in spec.revocations", func(ec *v1alpha1.EtcdCluster) bool {
		seen(ec)
		n := 0
		for _, rv := range ec.Spec.Revocations {
			if id, ok := certs[rv.Serial]; ok && rv.Target == id && rv.Reason == controller.RevocationReason {
				n++
			}
		}
		return n == len(certs)
	})
	for _, c := range ec.Status.Certificates {
		if c.Owner == node {
			t.Errorf("status.certificates still has %s of the removed %s", c.ID, node)
		}
	}
	if m, ok := ec.Status.Member(node); ok && m.State != v1alpha1.MemberRemoved {
		t.Errorf("status.members[%s] = %+v, want removed or gone", node, m)
	}
	return handOff
}

// killLeaderAt kills the leading controller -9 once at(step, cluster)
// holds, and checks the Lease moves to the other replica.
func (r *running) killLeaderAtStep(t *testing.T, ctx context.Context, step string, at func(string, *v1alpha1.EtcdCluster) bool) {
	t.Helper()
	leader, holder := r.leader(t, ctx)
	r.waitMembers(t, ctx, "step "+step, func(ec *v1alpha1.EtcdCluster) bool { return at(step, ec) })
	t.Logf("killing the leading controller %s at step %s", leader.Name, step)
	leader.Kill(t)
	r.respawn(t)
	for ctx.Err() == nil {
		if now, _ := r.LeaseHolder(ctx, r.ns); now != "" && now != holder {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the Lease stayed with %s after its kill", holder)
}

// editSpec changes the EtcdCluster's spec, again on a conflict.
func (r *running) editSpec(t *testing.T, ctx context.Context, change func(*v1alpha1.EtcdClusterSpec)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ec := r.cluster(t, ctx)
		change(&ec.Spec)
		return r.Kube.Client.Update(ctx, ec)
	})
	if err != nil {
		t.Fatalf("update the EtcdCluster's spec: %v", err)
	}
}

// waitMembers waits until cond holds for the EtcdCluster.
func (r *running) waitMembers(t *testing.T, ctx context.Context, what string, cond func(*v1alpha1.EtcdCluster) bool) *v1alpha1.EtcdCluster {
	t.Helper()
	var last v1alpha1.EtcdCluster
	for ctx.Err() == nil {
		r.respawn(t)
		if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &last); err == nil && cond(&last) {
			return &last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: %v; members %+v, conditions %+v", what, ctx.Err(), last.Status.Members, last.Status.Conditions)
	return nil
}

// waitCondition waits until Degraded is True with reason.
func (r *running) waitCondition(t *testing.T, ctx context.Context, reason string) *v1alpha1.EtcdCluster {
	t.Helper()
	return r.waitMembers(t, ctx, "Degraded "+reason, func(ec *v1alpha1.EtcdCluster) bool {
		c := meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded)
		return c != nil && c.Status == "True" && c.Reason == reason
	})
}

func votersAre(ec *v1alpha1.EtcdCluster, names ...string) bool {
	for _, n := range names {
		if m, ok := ec.Status.Member(n); !ok || m.State != v1alpha1.MemberVoter {
			return false
		}
	}
	return true
}

// ownerSerials are owner's certificates in the status: serial -> ID.
func ownerSerials(ec *v1alpha1.EtcdCluster, owner string) map[string]string {
	out := map[string]string{}
	for _, c := range ec.Status.Certificates {
		if c.Owner == owner {
			out[c.Serial] = c.ID
		}
	}
	return out
}

// etcdMembers is etcd's member list, voters and learners by name.
func etcdMembers(t *testing.T, e *selfhost.Env) (voters, learners []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var eps []string
	for _, m := range e.Etcd.Members {
		if m.Running() {
			eps = append(eps, m.ClientURL)
		}
	}
	resp, err := e.Etcd.Client(t, eps...).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Members {
		if m.IsLearner {
			learners = append(learners, m.Name)
		} else {
			voters = append(voters, m.Name)
		}
	}
	return voters, learners
}

// Restart windows are widened by these when the apiserver load's
// failures are matched to them: a request sent just before the stop, and
// the clients' reconnection after the start.
const (
	memberWindowBefore = time.Second
	memberWindowAfter  = 5 * time.Second
)

// apiServerRestarts gives the kube-apiserver client the harness's
// restart template in the spec: the control script restarts the test's
// apiserver with the --etcd-servers of the etcd-flags its agent wrote in
// its bundle (as a restart on its host reads its flags). It waits until
// the controller recorded the servers the apiserver runs with.
func (r *running) apiServerRestarts(t *testing.T, ctx context.Context) *selfhost.Windows {
	t.Helper()
	tmpl, windows := r.RestartTemplates()
	flags := filepath.Join(r.APIServerDir, "etcd-flags")
	r.Etcd.HandleControl(cluster.ClientAPIServer, func(verb string) error {
		if verb != "restart" {
			return fmt.Errorf("kube-apiserver: only restart is handled, not %q", verb)
		}
		data, err := os.ReadFile(flags)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "--etcd-servers="); ok {
				r.Kube.SetAPIServerArg("etcd-servers", v)
			}
		}
		return r.Kube.RestartAPIServer()
	})
	r.editSpec(t, ctx, func(s *v1alpha1.EtcdClusterSpec) {
		s.Clients = append(s.Clients, v1alpha1.ClientSpec{Name: cluster.ClientAPIServer, Restart: tmpl})
	})
	r.waitMembers(t, ctx, "the apiserver's servers recorded", func(ec *v1alpha1.EtcdCluster) bool { return ec.Status.APIServerEtcdServers != "" })
	return windows
}

// waitServers waits until the running apiserver's --etcd-servers are the
// client URLs of nodes, and the status records them.
func (r *running) waitServers(t *testing.T, ctx context.Context, nodes ...string) {
	t.Helper()
	var want []string
	for _, n := range nodes {
		want = append(want, r.Etcd.Member(n).ClientURL)
	}
	r.waitMembers(t, ctx, "--etcd-servers "+strings.Join(want, ","), func(ec *v1alpha1.EtcdCluster) bool {
		return ec.Status.APIServerEtcdServers == strings.Join(want, ",")
	})
	if got := strings.Join(r.Kube.APIServerArg("etcd-servers"), ","); got != strings.Join(want, ",") {
		t.Errorf("the running apiserver has --etcd-servers=%s, want %s", got, strings.Join(want, ","))
	}
}

// outsideWindows fails t for every failure of the load outside a
// restart window: the apiserver's restarts for its --etcd-servers are
// the only moments a request may fail.
func outsideWindows(t *testing.T, s selfhost.Stats, w *selfhost.Windows) {
	t.Helper()
	t.Log(s)
	if s.Requests == 0 {
		t.Errorf("%s load made no request", s.Load)
	}
	inside := 0
	for _, f := range s.When {
		if w.Contains(f.At, f.Took, memberWindowBefore, memberWindowAfter) {
			inside++
			continue
		}
		t.Errorf("%s load: %s failed at %s (took %s), outside every restart window", s.Load, f.Op, f.At.Format("15:04:05.000"), f.Took)
	}
	t.Logf("%s load: %d failures inside restart windows", s.Load, inside)
}

// respawn starts a controller replica again in place of every one that
// exited, as its Deployment would: one killed -9, or one that lost its
// Lease while the apiserver restarted (controller-runtime ends the
// process then, and the pod is restarted). The polling loops of the test
// call it, so that r.controllers changes in the test's goroutine only.
func (r *running) respawn(t *testing.T) {
	t.Helper()
	for i, p := range r.controllers {
		select {
		case <-p.Exited():
			respawned++
			r.controllers[i] = selfhost.StartEtcdpki(t, fmt.Sprintf("controller-r%d", respawned), p.Cmd.Args[1:]...)
		default:
		}
	}
}

// respawned counts the replicas respawn started, to name them.
var respawned int

// handOffWindow is how long after the controller asked for a leadership
// transfer a put may have been dropped: etcd's leader drops every
// proposal while it transfers, and a follower's forwarded one is lost
// without an answer, so the client times out (as livetest.Classify
// counts them for rotate and ca rotate).
const handOffWindow = 3 * time.Second

// outsideHandOff fails t for every failure of the etcd load but puts
// started in the leadership hand-off of a removal (counted and logged).
func outsideHandOff(t *testing.T, s selfhost.Stats, handOff time.Time) {
	t.Helper()
	t.Log(s)
	if s.Requests == 0 {
		t.Errorf("%s load made no request", s.Load)
	}
	dropped := 0
	for _, f := range s.When {
		if !handOff.IsZero() && f.Op == "put" && !f.At.Before(handOff.Add(-100*time.Millisecond)) && f.At.Before(handOff.Add(handOffWindow)) {
			dropped++
			continue
		}
		t.Errorf("%s load: %s failed at %s (took %s), outside the leadership hand-off", s.Load, f.Op, f.At.Format("15:04:05.000"), f.Took)
	}
	t.Logf("%s load: %d puts dropped in the leadership hand-off at %s", s.Load, dropped, handOff.Format("15:04:05.000"))
}
