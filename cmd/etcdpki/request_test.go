package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// standInAgents plays the agents' part, and only that, for a test of
// rotate --kubeconfig: it polls the EtcdCluster, and for the renewal
// request on it reports every requested certificate that answer accepts
// (now or at a later poll) as renewed now and proven in effect, once per
// request and one at a time, through kube.UpdateStatus as an agent does.
// It stops when the test ends.
func standInAgents(t *testing.T, c client.Client, key client.ObjectKey, answer func(id string) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		seen, answered := "", map[string]bool{}
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			var ec v1alpha1.EtcdCluster
			if c.Get(ctx, key, &ec) != nil {
				continue
			}
			stamp := ec.Annotations[v1alpha1.AnnotationRenewRequestedAt] + " " + ec.Annotations[v1alpha1.AnnotationRenewTargets]
			r, err := ec.Requested()
			if err != nil || r.At.IsZero() {
				continue
			}
			if stamp != seen {
				seen, answered = stamp, map[string]bool{}
			}
			s, err := ec.Cluster(cluster.Options{})
			if err != nil {
				t.Errorf("stand-in agents: %v", err)
				return
			}
			picked := pki.New(s).Targets
			if r.Targets != nil {
				picked, _ = pki.Select(picked, r.Targets)
			}
			for i, tg := range picked {
				if answered[tg.ID] || !answer(tg.ID) {
					continue
				}
				now := metav1.NewTime(time.Now())
				err := kube.UpdateStatus(ctx, c, key, func(ec *v1alpha1.EtcdCluster) error {
					ec.Status.Observe(v1alpha1.CertificateStatus{ID: tg.ID, Owner: tg.Owner, Serial: fmt.Sprintf("5e7a1%03d", i),
						InEffect: true, ProvenAt: &now, ProvenBy: v1alpha1.ProvenByAgent, RenewedAt: &now})
					return nil
				})
				if err == nil {
					answered[tg.ID] = true
				}
			}
		}
	})
}

// TestRotateRequestsTheAgents runs rotate --kubeconfig against a real
// apiserver and an exported PKI, with the test standing in for the
// agents: an unknown target or cluster is refused (exit 2) with the
// EtcdCluster unchanged; a request is stamped on the EtcdCluster and the
// command exits 0 once the status shows each requested certificate
// renewed since and in effect, one line each; with an agent missing it
// exits 1 after --timeout naming what is missing.
func TestRotateRequestsTheAgents(t *testing.T) {
	env := kubetest.Start(t)
	kc := env.AdminKubeconfig(t)
	root := t.TempDir()
	spec := exportSpec(t, root, "prod.yaml", "prod", "pki", "")
	mustRun(t, "init", "--spec", spec)
	ns := env.Namespace(t, "request")
	mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
	c := env.Client
	key := client.ObjectKey{Namespace: ns, Name: "prod"}
	get := func() v1alpha1.EtcdCluster {
		t.Helper()
		var ec v1alpha1.EtcdCluster
		if err := c.Get(context.Background(), key, &ec); err != nil {
			t.Fatal(err)
		}
		return ec
	}
	rotate := func(args ...string) (int, string, string) {
		t.Helper()
		return etcdpkiRun(t, append([]string{"rotate", "--kubeconfig", kc, "--namespace", ns}, args...)...)
	}

	t.Run("unknown target", func(t *testing.T) {
		before := get()
		code, _, errs := rotate("--cluster", "prod", "etcd-node-1", "etcd-node-9")
		if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, `unknown certificate "etcd-node-9": EtcdCluster request/prod has no such certificate, owner or kind (its certificates: `) {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
		if after := get(); after.ResourceVersion != before.ResourceVersion || after.Annotations[v1alpha1.AnnotationRenewRequestedAt] != "" {
			t.Errorf("a refused request changed the EtcdCluster: %v", after.Annotations)
		}
		code, _, errs = rotate("--cluster", "nosuch", "--all")
		if code != 2 || !strings.Contains(errs, "--cluster nosuch: EtcdCluster request/nosuch does not exist (etcdpki export creates it)") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})

	// Node 1's agent answers at once; node 2's only once node2 is set.
	var node2 atomic.Bool
	standInAgents(t, c, key, func(id string) bool {
		return strings.HasPrefix(id, "etcd-node-1/") || node2.Load() && strings.HasPrefix(id, "etcd-node-2/")
	})

	t.Run("in effect", func(t *testing.T) {
		start := time.Now()
		code, out, errs := rotate("--cluster", "prod", "--timeout", "1m", "etcd-node-1")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		t.Logf("rotate --kubeconfig printed:\n%s", out)
		ec := get()
		r, err := ec.Requested()
		if err != nil || ec.Annotations[v1alpha1.AnnotationRenewTargets] != "etcd-node-1" || r.At.Before(start.Truncate(time.Second)) || r.At.After(time.Now()) {
			t.Errorf("request on the EtcdCluster: %v (%v)", ec.Annotations, err)
		}
		if !strings.Contains(out, "requested the renewal of 3 certificates (etcd-node-1) on EtcdCluster request/prod at ") {
			t.Errorf("stdout lacks the request line:\n%s", out)
		}
		for i, id := range []string{"etcd-node-1/etcd-healthcheck-client", "etcd-node-1/etcd-peer", "etcd-node-1/etcd-server"} {
			c, _ := ec.Status.Certificate(id)
			if !strings.Contains(out, "] "+id+": renewed and in effect: serial "+c.Serial+", proven by agent (seen ") {
				t.Errorf("stdout lacks %s's line (%d):\n%s", id, i, out)
			}
		}
		if !strings.Contains(out, "[3/3]") || !strings.Contains(out, "all 3 requested certificates of EtcdCluster request/prod are renewed and in effect") {
			t.Errorf("stdout:\n%s", out)
		}
	})

	t.Run("timeout names what is missing", func(t *testing.T) {
		code, out, errs := rotate("--cluster", "prod", "--timeout", "3s", "--all")
		if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "not every certificate is in effect after 3s: ") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		for _, id := range []string{"etcd-node-2/etcd-server", "etcd-node-2/etcd-peer", "apiserver-etcd-client", "client/ops"} {
			if !strings.Contains(errs, id+": ") {
				t.Errorf("stderr does not name %s: %q", id, errs)
			}
		}
		if strings.Contains(errs, "etcd-node-1/") {
			t.Errorf("stderr names a certificate in effect: %q", errs)
		}
		if !strings.Contains(errs, "not renewed since the request") && !strings.Contains(errs, "no status reported") {
			t.Errorf("stderr does not say what the status shows: %q", errs)
		}
		if !strings.Contains(out, "etcd-node-1/etcd-server: renewed and in effect") {
			t.Errorf("stdout lacks the certificates in effect:\n%s", out)
		}
	})

	t.Run("the wait outlives an apiserver restart", func(t *testing.T) {
		type result struct {
			code      int
			out, errs string
		}
		done := make(chan result, 1)
		go func() {
			code, out, errs := rotate("--cluster", "prod", "--timeout", "2m", "etcd-node-2")
			done <- result{code, out, errs}
		}()
		for deadline := time.Now().Add(30 * time.Second); get().Annotations[v1alpha1.AnnotationRenewTargets] != "etcd-node-2"; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no request for etcd-node-2 stamped within 30s")
			}
		}
		env.StopAPIServer(t)
		time.Sleep(2 * time.Second)
		env.StartAPIServer(t)
		node2.Store(true)
		select {
		case r := <-done:
			if r.code != 0 || !strings.Contains(r.out, "[3/3] etcd-node-2/") {
				t.Errorf("exit %d, stdout:\n%s\nstderr: %s", r.code, r.out, r.errs)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("rotate --kubeconfig still waiting 90s after the apiserver came back and the agents answered")
		}
	})
}
