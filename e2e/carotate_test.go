package e2e

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Restart windows: a failed request counts as inside a restart when it
// overlaps [command start - windowBefore, restart done + windowAfter].
// Before: the leader's hand-off comes just before its grant (MoveLeader,
// then the wait until every member follows the new leader) and the agent
// runs the command within a watch event of the grant. After: a member
// that listens again still catches up and its peers reconnect; the
// apiserver's clients reconnect and its watch caches fill again.
const (
	windowBefore = 3 * time.Second
	windowAfter  = 5 * time.Second
)

// caRun is one CA rotation through the controller on the self-hosted
// setup, under both loads.
type caRunResult struct {
	took              time.Duration
	windows           []selfhost.Window
	inside, outside   map[string]int
	requests          map[string]int64
	killedAt, stageAt string
	killedHolder      string
}

// rotateCAThroughController runs `etcdpki ca rotate --kubeconfig` on the
// self-hosted setup with both loads on; killAt > 0 kills the leading
// controller -9 once the status shows that many steps (stages and
// proofs) done. It checks the end state and returns the failures inside
// and outside the restart windows.
func rotateCAThroughController(t testing.TB, killAt int) caRunResult {
	e := selfhost.Start(t, selfhost.Options{Name: "etcd-prod", Edit: selfhost.RestartableAPIServer})
	w := e.RecordRestarts()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	oldCA, err := pki.LoadCA(e.Inventory.Paths)
	if err != nil {
		t.Fatal(err)
	}
	// The lease of a Deployment's defaults (15 s, renew within 10 s): the
	// apiserver restarts in trust-both and finish take 4 to 8 s on this
	// machine, and a replica that cannot renew within the deadline exits,
	// as controller-runtime's do. supervise starts it again, as the
	// Deployment would.
	r := startEtcdpki(t, e, "--leader-elect-lease-duration", "15s", "--leader-elect-renew-deadline", "10s", "--leader-elect-retry-period", "500ms")
	r.supervise(t, ctx)
	r.waitReady(t, ctx)
	etcdLoad, apiLoad := e.StartEtcdLoadFollowingTrust(t), e.StartAPILoad(t)
	start := time.Now()
	rot := selfhost.StartEtcdpki(t, "ca-rotate", "ca", "rotate", "--kubeconfig", r.admin, "--namespace", r.ns,
		"--cluster", e.Spec.Name, "--id", "r1", "--timeout", "12m")
	res := caRunResult{}
	phase2 := r.watchStage(ctx, v1alpha1.CAStageReissue)
	if killAt > 0 {
		res.killedAt, res.stageAt, res.killedHolder = r.killLeaderAt(t, ctx, killAt, rot)
	}
	if code := rot.Wait(t, 13*time.Minute); code != 0 {
		t.Fatalf("ca rotate --kubeconfig exited %d:\n%s", code, rot.Output())
	}
	if killAt > 0 {
		if now, _ := r.LeaseHolder(ctx, r.ns); now == res.killedHolder {
			t.Errorf("Lease holder %q at the end is the replica killed at %s", now, res.killedAt)
		}
	}
	res.took = time.Since(start)
	es, as := etcdLoad.Stop(), apiLoad.Stop()
	res.windows = w.List()
	res.inside, res.outside, res.requests = map[string]int{}, map[string]int{}, map[string]int64{}
	reissueAt := phase2()
	for _, s := range []selfhost.Stats{es, as} {
		t.Log(s)
		res.requests[s.Load] = s.Requests
		for _, f := range s.When {
			// Phase 1 is prepare and trust-both, phase 2 reissue and finish.
			phase := fmt.Sprintf("%s phase 1", s.Load)
			if !reissueAt.IsZero() && f.At.After(reissueAt) {
				phase = fmt.Sprintf("%s phase 2", s.Load)
			}
			if w.Contains(f.At, f.Took, windowBefore, windowAfter) {
				res.inside[s.Load]++
				res.inside[phase]++
				continue
			}
			res.outside[s.Load]++
			res.outside[phase]++
			t.Errorf("%s load: %s failed at %s (took %s), outside every restart window", s.Load, f.Op, f.At.Format("15:04:05.000"), f.Took)
		}
		if s.Requests == 0 {
			t.Errorf("%s load made no request", s.Load)
		}
	}
	for _, x := range res.windows {
		t.Logf("restart window %s: %s - %s (%s)", x.Host, x.Start.Format("15:04:05.000"), x.End.Format("15:04:05.000"), x.End.Sub(x.Start).Round(time.Millisecond))
	}
	r.checkRotated(t, ctx, oldCA)
	// The apiserver is attached to the cluster on the new CA: it serves.
	if err := e.Kube.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "after-rotation"}}); err != nil {
		t.Errorf("the apiserver after the rotation: %v", err)
	}
	t.Logf("CA rotation took %s; failures inside restart windows %v, outside %v; requests %v; leader killed at %q", res.took.Round(time.Millisecond), res.inside, res.outside, res.requests, res.killedAt)
	return res
}

// supervise starts a controller replica again when its process exits
// (a lost Lease ends it), as a Deployment restarts its pod; a replica the
// test killed stays dead, so that the other one must finish. It stops
// when ctx ends.
func (r *running) supervise(t testing.TB, ctx context.Context) {
	var mu sync.Mutex
	procs := append([]*selfhost.Process(nil), r.controllers...)
	r.replicas = func() []*selfhost.Process {
		mu.Lock()
		defer mu.Unlock()
		return append([]*selfhost.Process(nil), procs...)
	}
	go func() {
		for n := 0; ctx.Err() == nil; {
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			for i, p := range procs {
				if _, killed := r.killed.Load(p); killed {
					continue
				}
				select {
				case <-p.Exited():
					n++
					procs[i] = selfhost.StartEtcdpki(t, fmt.Sprintf("controller-%d-restart-%d", i+1, n), r.ctrlArgs...)
				default:
				}
			}
			mu.Unlock()
		}
	}()
}

// watchStage notes when the rotation's status first shows stage; the
// returned function stops watching and returns that time (zero if never).
func (r *running) watchStage(ctx context.Context, stage string) func() time.Time {
	ctx, cancel := context.WithCancel(ctx)
	var at time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var ec v1alpha1.EtcdCluster
			if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &ec); err == nil {
				if st := ec.Status.CARotation; st != nil && stageIndex(st.Stage) >= stageIndex(stage) {
					at = time.Now()
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() time.Time { cancel(); <-done; return at }
}

// waitReady waits for the controller's first proof of every member.
func (r *running) waitReady(t testing.TB, ctx context.Context) {
	t.Helper()
	for ctx.Err() == nil {
		ec := r.cluster(t, ctx)
		for _, c := range ec.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && c.Status == "True" {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the EtcdCluster never became Ready")
}

// killLeaderAt kills the leading replica once the rotation's status shows
// n steps done (a stage passed or a host's proof), and says which. If
// rot (ca rotate) exits first, the rotation will not go on: it fails at
// once with rot's output, rather than waiting out ctx.
func (r *running) killLeaderAt(t testing.TB, ctx context.Context, n int, rot *selfhost.Process) (at, stage, holder string) {
	t.Helper()
	exited := false
	for ctx.Err() == nil {
		// The apiserver restarts during the rotation: a failed read is
		// read again.
		var ec v1alpha1.EtcdCluster
		err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.Spec.Name}, &ec)
		if st := ec.Status.CARotation; err == nil && st != nil {
			steps := len(st.Proofs) + stageIndex(st.Stage)
			if steps >= n || st.Stage == v1alpha1.CAStageDone {
				lead, holder := r.leader(t, ctx)
				r.killed.Store(lead, true)
				lead.Kill(t)
				t.Logf("killed the leading controller %s -9 at step %d (stage %s, %d proofs)", holder, n, st.Stage, len(st.Proofs))
				return fmt.Sprintf("step %d", n), st.Stage, holder
			}
		}
		select {
		case <-rot.Exited():
			// Once more: the status read above may predate its end.
			if exited {
				t.Fatalf("ca rotate --kubeconfig exited before step %d:\n%s", n, rot.Output())
			}
			exited = true
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the rotation never reached the step to kill at")
	return "", "", ""
}

func stageIndex(s string) int {
	for i, x := range []string{v1alpha1.CAStagePrepare, v1alpha1.CAStageTrustBoth, v1alpha1.CAStageReissue, v1alpha1.CAStageFinish, v1alpha1.CAStageDone} {
		if x == s {
			return i
		}
	}
	return 0
}

// checkRotated: the status says done with a proof per member and stage;
// the Secret holds the new CA alone; every member refuses a client
// certificate of the old CA on its client and peer ports and accepts
// one of the new; every bundle trusts the new CA alone.
func (r *running) checkRotated(t testing.TB, ctx context.Context, oldCA *ca.CA) {
	t.Helper()
	ec := r.cluster(t, ctx)
	st := ec.Status.CARotation
	if st == nil || st.Stage != v1alpha1.CAStageDone || st.FinishedAt == nil {
		t.Fatalf("status.caRotation = %+v, want done", st)
	}
	for _, stage := range []string{v1alpha1.CAStageTrustBoth, v1alpha1.CAStageReissue, v1alpha1.CAStageFinish} {
		for _, n := range r.Spec.Nodes {
			if _, ok := st.Proof(stage, n.Name); !ok {
				t.Errorf("no proof of %s in stage %s", n.Name, stage)
			}
		}
	}
	for _, stage := range []string{v1alpha1.CAStageTrustBoth, v1alpha1.CAStageFinish} {
		if p, ok := st.Proof(stage, "kube-apiserver"); !ok || !p.Restarted {
			t.Errorf("kube-apiserver in stage %s: %+v, want restarted", stage, p)
		}
	}
	var s corev1.Secret
	if err := r.Kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: v1alpha1.CASecretName(r.Spec.Name)}, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{v1alpha1.SecretOldCert, v1alpha1.SecretOldKey, v1alpha1.SecretNextCert, v1alpha1.SecretNextKey} {
		if _, ok := s.Data[k]; ok {
			t.Errorf("the CA Secret still holds %s after the rotation", k)
		}
	}
	newCA, err := ca.Parse(s.Data[v1alpha1.SecretCert], s.Data[v1alpha1.SecretKey], "Secret")
	if err != nil {
		t.Fatal(err)
	}
	if newCA.Cert.Equal(oldCA.Cert) || certx.Serial(newCA.Cert) != st.NewCA || certx.Serial(oldCA.Cert) != st.OldCA {
		t.Errorf("Secret's CA serial %s, old %s; status says %s replaced %s", certx.Serial(newCA.Cert), certx.Serial(oldCA.Cert), st.NewCA, st.OldCA)
	}
	roots := probe.CertPool([]*x509.Certificate{newCA.Cert})
	oldPair, _ := oldCA.ProbeClient(ca.ProbeValidity, time.Now())
	newPair, _ := newCA.ProbeClient(ca.ProbeValidity, time.Now())
	for _, n := range r.Spec.Nodes {
		client, peer, err := r.Addrs(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{client, peer} {
			err := runner.AcceptedAsClient(ctx, addr, probe.ClientConfig(roots, &oldPair))
			if pe, ok := errors.AsType[*probe.Error](err); !ok || pe.Kind != probe.KindClientCertRejected {
				t.Errorf("%s %s with an old-CA client certificate: %v, want refused", n.Name, addr, err)
			}
			if err := runner.AcceptedAsClient(ctx, addr, probe.ClientConfig(roots, &newPair)); err != nil {
				t.Errorf("%s %s with a new-CA client certificate (and only the new CA trusted for its server certificate): %v", n.Name, addr, err)
			}
		}
	}
	for _, b := range r.Inventory.Bundles {
		cas, err := pki.BundleCAs(b.CADir)
		if err != nil || len(cas) != 1 || !cas[0].Equal(newCA.Cert) {
			t.Errorf("bundle %s trusts %d CAs (%v), want the new CA alone", b.Owner, len(cas), err)
		}
	}
	noPrivateKeys(t, r)
}

// TestSelfHostedCARotation is the CA rotation through the
// controller: the apiserver on the managed cluster, both loads on, two
// controller replicas, an agent per node and one for kube-apiserver;
// `etcdpki ca rotate --kubeconfig` runs the four stages, every member
// and the apiserver restarted twice by grant; at the end every member
// refuses old-CA clients on every port, and no request failed outside
// the restart windows.
func TestSelfHostedCARotation(t *testing.T) {
	rotateCAThroughController(t, 0)
}

// TestSelfHostedCARotationLeaderKilled kills the leading controller -9
// at a random step of the rotation (faultTrials times): the other replica
// finishes it.
func TestSelfHostedCARotationLeaderKilled(t *testing.T) {
	for i := range faultTrials(t) {
		step := 1 + rand.IntN(14)
		t.Run(fmt.Sprintf("trial-%d-step-%d", i+1, step), func(t *testing.T) { rotateCAThroughController(t, step) })
	}
}

// BenchmarkCARotationThroughController measures whole rotations through
// the controller on the self-hosted setup under both loads: the time of
// the rotation and the failed requests inside the restart windows (the
// run fails on any outside them).
func BenchmarkCARotationThroughController(b *testing.B) {
	var took time.Duration
	inside := map[string]int{}
	for i := 0; i < b.N; i++ {
		res := rotateCAThroughController(b, 0)
		took += res.took
		for k, v := range res.inside {
			inside[k] += v
		}
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/rotation")
	b.ReportMetric(float64(inside["etcd"])/float64(b.N), "etcd-failed-in-windows/rotation")
	b.ReportMetric(float64(inside["apiserver"])/float64(b.N), "api-failed-in-windows/rotation")
}
