package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/kube"
)

// TestAgentStatusPolicy: RBAC grants every agent the whole status
// subresource; deploy/agent-rbac.yaml's admission policy narrows each
// agent's writes to its own entries. Each agent write here goes through
// the real kube-apiserver as that agent's identity, and each forged one
// must be refused with the policy's message and change nothing.
func TestAgentStatusPolicy(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "etcd")
	e.Apply(t, "deploy/agent-rbac.yaml", ns)
	at := metav1.NewTime(time.Now().Truncate(time.Second))
	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"},
		Spec: v1alpha1.EtcdClusterSpec{Name: "prod", Nodes: []v1alpha1.NodeSpec{{Name: "etcd-1", IPs: []string{"127.0.0.1"}}, {Name: "etcd-2", IPs: []string{"127.0.0.2"}}}}}
	if err := e.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(ec)
	// The controller (not an agent) writes the starting status: one
	// entry per node, a member entry each, and a restart granted to etcd-2.
	if err := kube.UpdateStatus(ctx, e.Client, key, func(ec *v1alpha1.EtcdCluster) error {
		for _, n := range []string{"etcd-1", "etcd-2"} {
			ec.Status.Observe(v1alpha1.CertificateStatus{ID: n + "/server", Owner: n, Serial: "01", InEffect: true, ProvenAt: &at})
			ec.Status.SetMember(v1alpha1.MemberStatus{Name: n, State: v1alpha1.MemberJoining})
		}
		ec.Status.Restart = &v1alpha1.RestartGrant{Host: "etcd-2", Reason: "ca-rotation", GrantedAt: &at}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	as := func(user string) client.Client {
		_, cfg := e.AddUser(t, user, v1alpha1.AgentGroup)
		c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	agent1, agent2, stranger := as(v1alpha1.NodeUser("etcd-1")), as(v1alpha1.NodeUser("etcd-2")), as("mallory")
	apiAgent := as(v1alpha1.ClientUser(cluster.ClientAPIServer))
	write := func(c client.Client, change func(*v1alpha1.EtcdClusterStatus)) error {
		var cur v1alpha1.EtcdCluster
		if err := e.Client.Get(ctx, key, &cur); err != nil {
			t.Fatal(err)
		}
		change(&cur.Status)
		return c.Status().Update(ctx, &cur)
	}
	forgeRestart := func(st *v1alpha1.EtcdClusterStatus) {
		st.Restart = &v1alpha1.RestartGrant{Host: "etcd-1", Reason: "forged", GrantedAt: &at}
	}
	// The policy is enforced once the apiserver has loaded it: wait for
	// the first refusal of a forged grant before the cases below.
	deadline := time.Now().Add(time.Minute)
	for {
		err := write(agent1, forgeRestart)
		if err != nil && strings.Contains(err.Error(), "etcdpki-agent-status") {
			break
		}
		if err != nil {
			t.Fatalf("a forged grant before the policy is loaded: %v, want accepted or refused by the policy", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a forged restart grant was still accepted a minute after the policy was created")
		}
		// Put the controller's grant back: the policy is not loaded yet.
		if err := write(e.Client, func(st *v1alpha1.EtcdClusterStatus) {
			st.Restart = &v1alpha1.RestartGrant{Host: "etcd-2", Reason: "ca-rotation", GrantedAt: &at}
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	later := metav1.NewTime(at.Add(time.Minute))
	cases := []struct {
		name   string
		c      client.Client
		change func(*v1alpha1.EtcdClusterStatus)
		refuse string // "" when the write is the agent's own
	}{
		{"own certificate", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "etcd-1/server", Owner: "etcd-1", Serial: "02", InEffect: true, ProvenAt: &later})
		}, ""},
		{"another host's certificate", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "etcd-2/server", Owner: "etcd-2", Serial: "0bad", InEffect: true, ProvenAt: &later})
		}, "status.certificates: only entries owned by etcd-1 may change"},
		{"another host's certificate taken over", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "etcd-2/server", Owner: "etcd-1", Serial: "0bad", InEffect: true, ProvenAt: &later})
		}, "status.certificates: only entries owned by etcd-1 may change"},
		{"a second entry under another host's id", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Certificates = append([]v1alpha1.CertificateStatus{{ID: "etcd-2/server", Owner: "etcd-1", Serial: "0bad", InEffect: true, ProvenAt: &later}}, st.Certificates...)
		}, "Duplicate value"},
		{"an id of another host not yet reported", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "etcd-2/etcd-peer", Owner: "etcd-1", Serial: "0bad", InEffect: true, ProvenAt: &later})
		}, "status.certificates: an entry of etcd-1 must name one of its own certificates"},
		{"own member", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.SetMember(v1alpha1.MemberStatus{Name: "etcd-1", State: v1alpha1.MemberJoining, Message: "started"})
		}, ""},
		{"another member", agent1, func(st *v1alpha1.EtcdClusterStatus) { st.DropMember("etcd-2") },
			"status.members: only the entry of etcd-1 may change"},
		{"a forged grant", agent1, forgeRestart, "status.restart: only the grant to etcd-1 may be marked done"},
		{"another host's grant marked done", agent1, func(st *v1alpha1.EtcdClusterStatus) { st.Restart.DoneAt = &later },
			"status.restart: only the grant to etcd-1 may be marked done"},
		{"a grant dropped", agent1, func(st *v1alpha1.EtcdClusterStatus) { st.Restart = nil },
			"status.restart: only the grant to etcd-1 may be marked done"},
		{"a condition", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Conditions = append(st.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Forged", LastTransitionTime: at})
		}, "are the controller's"},
		{"a revocation enforced", agent1, func(st *v1alpha1.EtcdClusterStatus) {
			st.Revocations = append(st.Revocations, v1alpha1.RevocationStatus{Serial: "0a", Enforced: true})
		}, "are the controller's"},
		{"kube-apiserver's own certificate", apiAgent, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "apiserver-etcd-client", Owner: cluster.ClientAPIServer, Serial: "03", InEffect: true, ProvenAt: &later})
		}, ""},
		{"a client's entry under another client's id", apiAgent, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "client/backup", Owner: cluster.ClientAPIServer, Serial: "0bad", InEffect: true, ProvenAt: &later})
		}, "status.certificates: an entry of kube-apiserver must name one of its own certificates"},
		{"a user that is no agent identity", stranger, func(st *v1alpha1.EtcdClusterStatus) {
			st.Observe(v1alpha1.CertificateStatus{ID: "x", Owner: "", InEffect: true})
		}, "an agent is etcdpki:node:NODE or etcdpki:client:NAME"},
		{"the grant's host marks it done", agent2, func(st *v1alpha1.EtcdClusterStatus) { st.Restart.DoneAt = &later }, ""},
		{"marked done twice", agent2, func(st *v1alpha1.EtcdClusterStatus) { st.Restart.DoneAt = &metav1.Time{Time: later.Add(time.Minute)} },
			"status.restart: only the grant to etcd-2 may be marked done"},
	}
	for _, tc := range cases {
		var before v1alpha1.EtcdCluster
		if err := e.Client.Get(ctx, key, &before); err != nil {
			t.Fatal(err)
		}
		err := write(tc.c, tc.change)
		var after v1alpha1.EtcdCluster
		if gerr := e.Client.Get(ctx, key, &after); gerr != nil {
			t.Fatal(gerr)
		}
		switch {
		case tc.refuse == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
			t.Errorf("%s: got %v, want a refusal containing %q", tc.name, err, tc.refuse)
		case tc.refuse != "" && after.ResourceVersion != before.ResourceVersion:
			t.Errorf("%s: refused, but the object changed (resourceVersion %s -> %s)", tc.name, before.ResourceVersion, after.ResourceVersion)
		}
	}
	// The controller's writes are not an agent's: it may change any field.
	if err := write(e.Client, func(st *v1alpha1.EtcdClusterStatus) { st.Restart = nil; st.DropMember("etcd-2") }); err != nil {
		t.Errorf("the controller's write refused: %v", err)
	}
}
