package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/runner"
)

// grantFixture is a running cluster handed to the apiserver, whose
// nodes' restart commands first append the node's name to a file (so a
// test counts the restarts), and the agents' RBAC.
type grantFixture struct {
	e     *env
	c     *etcdtest.Cluster
	f     *fixture
	ns    string
	count string
	cfg   *tls.Config
}

// startGrantFixture: pause, when set, makes each restart command sleep
// that long after counting, before it restarts the member: the window in
// which a test kills the agent.
func startGrantFixture(t *testing.T, pause time.Duration) *grantFixture {
	t.Helper()
	c := etcdtest.Start(t, etcdtest.Options{Name: clusterName})
	g := &grantFixture{e: startEnv(t), c: c, count: filepath.Join(t.TempDir(), "restarts")}
	g.ns = g.e.namespace(t)
	g.e.Apply(t, "deploy/agent-rbac.yaml", g.ns)
	for i := range c.File.Nodes {
		c.File.Nodes[i].Restart = fmt.Sprintf("echo {{.Name}} >> '%s'; sleep %g; %s", g.count, pause.Seconds(), c.File.Nodes[i].Restart)
	}
	g.f = g.e.exportFixture(t, g.ns, c)
	var p probeCerts
	var err error
	g.cfg, err = p.config(g.f.ca, time.Now())
	must(t, err)
	return g
}

// agent starts `etcdpki agent` for node, as a process.
func (g *grantFixture) agent(t *testing.T, node string) *selfhost.Process {
	t.Helper()
	kc, _ := g.e.AddUser(t, v1alpha1.NodeUser(node), v1alpha1.AgentGroup)
	b, ok := g.f.inv.Bundle(node)
	if !ok {
		t.Fatalf("no bundle for %s", node)
	}
	return selfhost.StartEtcdpki(t, "agent-"+node, "agent", "--kubeconfig", kc, "--namespace", g.ns, "--cluster", clusterName, "--node", node, "--dir", b.Root)
}

func (g *grantFixture) restarts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(g.count)
	if os.IsNotExist(err) {
		return nil
	}
	must(t, err)
	return strings.Fields(string(data))
}

func (g *grantFixture) spec(t *testing.T) *cluster.Spec {
	t.Helper()
	s, err := g.f.cl.Cluster(cluster.Options{})
	must(t, err)
	return s
}

// grantUntilDone calls grantRestart as a reconcile would, until the
// grant of host for reason is done, and returns every answer.
func (g *grantFixture) grantUntilDone(t *testing.T, host, reason string) []restartGrant {
	t.Helper()
	var out []restartGrant
	key := client.ObjectKeyFromObject(g.f.cl)
	waitFor(t, "the restart of "+host+" to be done", func(ctx context.Context) (bool, error) {
		r, err := grantRestart(ctx, g.e.Client, g.e.Client, key, g.spec(t), g.cfg, host, reason)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return r.Done, nil
	})
	return out
}

func (g *grantFixture) leader(t *testing.T) string {
	t.Helper()
	h := probe.Health(context.Background(), g.c.Spec.ClientEndpoints(), g.cfg, runner.ProbeTimeout)
	for i, e := range h.Endpoints {
		if e.Status != nil && e.Status.MemberID == h.Leader {
			return g.c.Spec.Nodes[i].Name
		}
	}
	t.Fatalf("no leader: %v", runner.HealthyOrError(g.c.Spec, h, "looking for the leader"))
	return ""
}

func (g *grantFixture) grant(t *testing.T) *v1alpha1.RestartGrant {
	t.Helper()
	var cl v1alpha1.EtcdCluster
	must(t, g.e.Client.Get(context.Background(), client.ObjectKeyFromObject(g.f.cl), &cl))
	return cl.Status.Restart
}

// TestRestartGrantRunsOnceAndIsDone grants a restart of the etcd leader:
// leadership moves away first, the agent on that node runs the restart
// command once, the member runs again under a new pid, and the grant is
// reported done; asked again, the same grant is done and nothing runs.
func TestRestartGrantRunsOnceAndIsDone(t *testing.T) {
	g := startGrantFixture(t, 0)
	node := g.leader(t)
	pid := g.c.Member(node).PID()
	g.agent(t, node)
	answers := g.grantUntilDone(t, node, "test restart")
	if !answers[0].Granted || answers[0].HandOff == "" || answers[0].HandOff == node {
		t.Errorf("first answer %+v: want granted after a hand-off to another member", answers[0])
	}
	for _, a := range answers[1:] {
		if a.Granted {
			t.Errorf("granted again (%+v): a grant is given once", a)
		}
	}
	if got := g.restarts(t); len(got) != 1 || got[0] != node {
		t.Errorf("restart commands run: %v, want [%s]", got, node)
	}
	if now := g.c.Member(node).PID(); now == pid || now == 0 {
		t.Errorf("%s pid %d, was %d: want a new process", node, now, pid)
	}
	if gr := g.grant(t); gr == nil || gr.DoneAt == nil || gr.Host != node || gr.DoneAt.Before(gr.GrantedAt) {
		t.Errorf("status.restart = %+v, want %s done after it was granted", gr, node)
	}
	again := g.grantUntilDone(t, node, "test restart")
	if len(again) != 1 || again[0].Granted || len(g.restarts(t)) != 1 {
		t.Errorf("asked again: %+v, restarts %v; want done at once, nothing run", again, g.restarts(t))
	}
	if err := runner.HealthyOrError(g.c.Spec, probe.Health(context.Background(), g.c.Spec.ClientEndpoints(), g.cfg, runner.ProbeTimeout), "after"); err != nil {
		t.Error(err)
	}
}

// TestRestartGrantAgentKilledMidRestart kills the agent -9 while its
// restart command runs: the grant stays without doneAt, the agent
// started again runs the restart again, and the grant is done with the
// member healthy.
func TestRestartGrantAgentKilledMidRestart(t *testing.T) {
	g := startGrantFixture(t, 3*time.Second)
	node := g.c.Spec.Nodes[1].Name
	key := client.ObjectKeyFromObject(g.f.cl)
	a := g.agent(t, node)
	r, err := grantRestart(context.Background(), g.e.Client, g.e.Client, key, g.spec(t), g.cfg, node, "kill test")
	must(t, err)
	if !r.Granted {
		t.Fatalf("no grant: %+v", r)
	}
	waitFor(t, "the restart command to start", func(context.Context) (bool, error) { return len(g.restarts(t)) == 1, nil })
	a.Kill(t)
	if gr := g.grant(t); gr == nil || gr.DoneAt != nil {
		t.Fatalf("status.restart = %+v after the kill, want outstanding", gr)
	}
	g.agent(t, node)
	g.grantUntilDone(t, node, "kill test")
	if got := g.restarts(t); len(got) < 2 {
		t.Errorf("restart commands run: %v, want the killed one and the re-run", got)
	}
	if err := runner.HealthyOrError(g.c.Spec, probe.Health(context.Background(), g.c.Spec.ClientEndpoints(), g.cfg, runner.ProbeTimeout), "after"); err != nil {
		t.Error(err)
	}
}

// TestRestartGrantOutlivesTheReplica: a replica grants and dies (its
// memory gone); another, asking the same, finds the grant outstanding and
// grants nothing, and asking for another host meanwhile is refused (one
// restart at a time). When the agent comes, the restart runs once.
func TestRestartGrantOutlivesTheReplica(t *testing.T) {
	g := startGrantFixture(t, 0)
	key := client.ObjectKeyFromObject(g.f.cl)
	node, other := g.c.Spec.Nodes[2].Name, g.c.Spec.Nodes[0].Name
	ctx := context.Background()
	r, err := grantRestart(ctx, g.e.Client, g.e.Client, key, g.spec(t), g.cfg, node, "failover test")
	must(t, err)
	if !r.Granted {
		t.Fatalf("no grant: %+v", r)
	}
	// The second replica: nothing but the API object in common.
	for _, host := range []string{node, other} {
		r, err := grantRestart(ctx, g.e.Client, g.e.Client, key, g.spec(t), g.cfg, host, "failover test")
		must(t, err)
		if r.Granted || r.Done || r.Waiting == "" {
			t.Errorf("asked for %s while %s's grant is outstanding: %+v, want waiting", host, node, r)
		}
	}
	g.agent(t, node)
	g.grantUntilDone(t, node, "failover test")
	if got := g.restarts(t); len(got) != 1 || got[0] != node {
		t.Errorf("restart commands run: %v, want [%s]", got, node)
	}
	// Done, the next host may be granted.
	r, err = grantRestart(ctx, g.e.Client, g.e.Client, key, g.spec(t), g.cfg, other, "failover test")
	must(t, err)
	if !r.Granted {
		t.Errorf("after %s's restart was done, %s: %+v, want granted", node, other, r)
	}
}
