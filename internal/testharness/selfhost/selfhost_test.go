package selfhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
)

func TestMain(m *testing.M) { selfhost.Main(m) }

// TestHarness runs the whole harness once: the apiserver on the managed
// cluster, both loads clean while nothing disturbs it, the members'
// served serials, the Lease holder, an etcdpki process killed -9, and
// last the loads' counters seeing the failures of an apiserver stop and
// of a quorum loss.
func TestHarness(t *testing.T) {
	e := selfhost.Start(t, selfhost.Options{})
	pids := e.Pids()
	t.Run("TheAPIServerStoresInTheManagedCluster", func(t *testing.T) { storesInTheManagedCluster(t, e) })
	t.Run("LoadsRunCleanOnAnUndisturbedCluster", func(t *testing.T) { loadsRunClean(t, e) })
	t.Run("MembersServeTheirBundles", func(t *testing.T) { membersServeTheirBundles(t, e) })
	t.Run("LeaseHolder", func(t *testing.T) { leaseHolder(t, e) })
	t.Run("AgentIdentities", func(t *testing.T) { agentIdentities(t, e) })
	t.Run("EtcdpkiProcessKilled", func(t *testing.T) { etcdpkiKilled(t, e) })
	if got := e.Pids(); !maps.Equal(got, pids) {
		t.Errorf("member pids %v, started as %v: nothing above restarts a member", got, pids)
	}
	t.Run("CountersSeeFailures", func(t *testing.T) { countersSeeFailures(t, e) })
}

// storesInTheManagedCluster: a ConfigMap created through the apiserver is
// under /registry in the managed cluster, read with a TLS client.
func storesInTheManagedCluster(t *testing.T, e *selfhost.Env) {
	ctx := context.Background()
	ns := e.Namespace(t, "stored")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "witness"}, Data: map[string]string{"where": "on-the-managed-etcd"}}
	if err := e.Kube.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	key := "/registry/configmaps/" + ns + "/witness"
	resp, err := e.Etcd.Client(t).Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s from the managed cluster: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("the managed cluster has no %s: the apiserver stores elsewhere", key)
	}
	// The apiserver stores core objects as protobuf behind "k8s\x00".
	if v := resp.Kvs[0].Value; !bytes.HasPrefix(v, []byte("k8s\x00")) || !bytes.Contains(v, []byte("on-the-managed-etcd")) {
		t.Errorf("%s holds %q, want the ConfigMap as the apiserver encodes it", key, v)
	}
}

// loadsRunClean: both loads for 20 s with nothing disturbing the cluster
// make requests, and none fails; the watch delivered events.
func loadsRunClean(t *testing.T, e *selfhost.Env) {
	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)
	time.Sleep(20 * time.Second)
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	es.CheckClean(t)
	as.CheckClean(t)
	if es.ByOp["put"] == 0 || es.ByOp["get"] == 0 {
		t.Errorf("etcd load: %v, want puts and gets", es.ByOp)
	}
	if as.ByOp["create"] == 0 || as.ByOp["get"] == 0 || as.ByOp["update"] == 0 || as.ByOp["watch"] != 1 {
		t.Errorf("apiserver load: %v, want creates, gets, updates and one watch", as.ByOp)
	}
	if as.Events < as.ByOp["create"]+as.ByOp["update"] {
		t.Errorf("the watch delivered %d events for %d writes", as.Events, as.ByOp["create"]+as.ByOp["update"])
	}
}

// membersServeTheirBundles: each member's ports serve its bundle's
// serials, distinct on every port.
func membersServeTheirBundles(t *testing.T, e *selfhost.Env) {
	served := e.CheckServed(t)
	if len(served) != 3 {
		t.Fatalf("served serials of %d members, want 3", len(served))
	}
	seen := map[string]bool{}
	for node, s := range served {
		for _, serial := range []string{s.Server, s.Peer} {
			if serial == "" || seen[serial] {
				t.Errorf("member %s: serial %q is empty or served twice", node, serial)
			}
			seen[serial] = true
		}
	}
}

// leaseHolder: no Lease is an error naming it, and a Lease's holder is
// read back.
func leaseHolder(t *testing.T, e *selfhost.Env) {
	ctx := context.Background()
	ns := e.Namespace(t, "lease")
	if _, err := e.LeaseHolder(ctx, ns); !apierrors.IsNotFound(errors.Unwrap(err)) || !strings.Contains(err.Error(), v1alpha1.LeaseName) {
		t.Errorf("no Lease yet: err = %v, want not found naming %s", err, v1alpha1.LeaseName)
	}
	holder := "controller-a_1234"
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.LeaseName}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}
	if err := e.Kube.Client.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	if got, err := e.LeaseHolder(ctx, ns); err != nil || got != holder {
		t.Errorf("LeaseHolder = %q, %v; want %q", got, err, holder)
	}
}

// agentIdentities: each agent's kubeconfig authenticates as the identity
// the signer checks (no RBAC is applied here, so a Forbidden naming the
// user proves it), and its arguments point it at its own bundle.
func agentIdentities(t *testing.T, e *selfhost.Env) {
	for owner, user := range map[string]string{"etcd-2": "etcdpki:node:etcd-2", "kube-apiserver": "etcdpki:client:kube-apiserver"} {
		cfg, err := clientcmd.BuildConfigFromFlags("", e.AgentKubeconfig(t, owner))
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg, client.Options{Scheme: e.Kube.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		err = c.List(context.Background(), &v1alpha1.EtcdClusterList{}, client.InNamespace("default"))
		if want := fmt.Sprintf("User %q cannot list", user); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s's agent: err = %v, want %s", owner, err, want)
		}
	}
	args := strings.Join(e.AgentArgs(t, "etcd-2", "K", "N"), " ")
	if want := "--node etcd-2 --dir " + e.NodeDirs["etcd-2"]; !strings.Contains(args, want) || !strings.HasSuffix(e.NodeDirs["etcd-2"], "/nodes/etcd-2") {
		t.Errorf("agent args %q, want %q", args, want)
	}
	if args := strings.Join(e.AgentArgs(t, "kube-apiserver", "K", "N"), " "); !strings.HasSuffix(args, "--client kube-apiserver --dir "+e.APIServerDir) {
		t.Errorf("agent args %q, want the apiserver bundle %s", args, e.APIServerDir)
	}
}

// etcdpkiKilled: the built binary runs; a long-running etcdpki (rotate
// --watch) is killed by SIGKILL and is gone.
func etcdpkiKilled(t *testing.T, e *selfhost.Env) {
	v := selfhost.StartEtcdpki(t, "version", "--version")
	if code := v.Wait(t, time.Minute); code != 0 || !strings.Contains(v.Output(), "etcdpki") {
		t.Errorf("etcdpki --version: exit %d, output %q", code, v.Output())
	}
	p := selfhost.StartEtcdpki(t, "rotate-watch", "rotate", "--spec", e.SpecPath, "--watch")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.WaitOutput(t, ctx, "watching")
	p.Kill(t)
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("etcdpki rotate --watch ended with %v, want killed by SIGKILL", p.Cmd.ProcessState)
	}
	if err := syscall.Kill(p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d after Kill: %v, want no such process", p.PID(), err)
	}
}

// countersSeeFailures: the loads count what fails. With the apiserver
// stopped every apiserver request fails and its watch breaks; with two
// of three members stopped (no quorum) every etcd request fails at its
// timeout. (One member of three stopped need not fail any request: the
// client has every endpoint and the others keep quorum, so it proves
// nothing about the counter.) Both loads recover once the parts are
// back.
func countersSeeFailures(t *testing.T, e *selfhost.Env) {
	etcdLoad, apiLoad := e.StartEtcdLoad(t), e.StartAPILoad(t)
	waitFor(t, "both loads to succeed", func() bool {
		return etcdLoad.Stats().Requests > 0 && apiLoad.Stats().Requests > 0 && apiLoad.Stats().Failed == 0
	})

	e.Kube.StopAPIServer(t)
	waitFor(t, "the apiserver load to count failures", func() bool {
		s := apiLoad.Stats()
		return s.FailedByOp["watch"] > 0 && s.FailedByOp["get"]+s.FailedByOp["create"] > 0
	})
	back := time.Now()
	e.Kube.StartAPIServer(t)
	waitFor(t, "the apiserver load to recover", func() bool { return apiLoad.Stats().LastSuccess.After(back) })

	for _, m := range e.Etcd.Members[1:] {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the etcd load to count failures", func() bool { return etcdLoad.Stats().Failed > 0 })
	back = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Etcd.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the etcd load to recover", func() bool { return etcdLoad.Stats().LastSuccess.After(back) })

	es, as := etcdLoad.Stop(), apiLoad.Stop()
	t.Log(es)
	t.Log(as)
	for _, s := range []selfhost.Stats{es, as} {
		if s.Failed == 0 || len(s.Errors) == 0 || s.Errors[0].Err == nil {
			t.Errorf("%s load: %d failed, errors %v: the counter saw nothing", s.Load, s.Failed, s.Errors)
			continue
		}
		t.Logf("%s load, first failure: %s", s.Load, s.Errors[0])
	}
	// Without quorum a request waits out its timeout (before it, a
	// graceful stop may also answer "leader changed").
	timedOut := false
	for _, f := range es.Errors {
		timedOut = timedOut || strings.Contains(f.Err.Error(), "deadline exceeded")
	}
	if !timedOut {
		t.Errorf("etcd load's failures %v: want a request timed out without quorum", es.Errors)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 90s for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
