package agent_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

var (
	buildOnce  sync.Once
	binDir     string
	buildErr   error
	buildFlags []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// etcdpkiBin builds etcdpki once per test binary: the agents run as the
// real processes they are on a host.
func etcdpkiBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "etcdpki-agent-test"); buildErr != nil {
			return
		}
		args := append(append([]string{"build"}, buildFlags...), "-o", filepath.Join(binDir, "etcdpki"), "./cmd/etcdpki")
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "etcdpki")
}

// kubeFixture is a real etcd cluster (run from etcd.env, so members
// enforce the CRL) and a real kube-apiserver holding its EtcdCluster, the
// trust ConfigMap and the agents' RBAC.
type kubeFixture struct {
	c         *etcdtest.Cluster
	env       *kubetest.Env
	cs        kubernetes.Interface
	ns, name  string
	authority *ca.CA
	inv       *pki.Inventory
}

func startKube(t *testing.T) *kubeFixture {
	t.Helper()
	c := livetest.RevokeCluster(t)
	env := kubetest.Start(t)
	f := &kubeFixture{c: c, env: env, ns: env.Namespace(t, "etcd"), name: c.Spec.Name, inv: c.Inventory()}
	var err error
	if f.cs, err = kubernetes.NewForConfig(env.Config); err != nil {
		t.Fatal(err)
	}
	if f.authority, err = pki.LoadCA(c.Paths); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, "deploy/agent-rbac.yaml", f.ns)
	spec, err := v1alpha1.SpecFromFile(&c.File)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: f.name, Namespace: f.ns}, Spec: spec}
	if err := env.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(c.Paths.CACert())
	crl, _ := os.ReadFile(c.Paths.CRL())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TrustConfigMapName(f.name), Namespace: f.ns},
		Data: map[string]string{v1alpha1.TrustCA: string(caPEM)}, BinaryData: map[string][]byte{v1alpha1.TrustCRL: crl}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	return f
}

// agentProc is one `etcdpki agent` process.
type agentProc struct {
	cmd     *exec.Cmd
	out     *etcdtest.Buffer
	metrics string
	done    chan error
}

// startAgent runs the agent of owner (a node, or a client) with its own
// identity's kubeconfig, on the directory its bundle is deployed to.
func (f *kubeFixture) startAgent(t *testing.T, owner string, node bool, extra ...string) *agentProc {
	t.Helper()
	user, flag, dir := v1alpha1.ClientUser(owner), "--client", f.c.Paths.ClientBundle(owner)
	if node {
		user, flag, dir = v1alpha1.NodeUser(owner), "--node", f.c.Paths.NodeDir(owner)
	}
	kc, _ := f.env.AddUser(t, user, v1alpha1.AgentGroup)
	p := &agentProc{out: &etcdtest.Buffer{}, metrics: filepath.Join(t.TempDir(), "agent.prom"), done: make(chan error, 1)}
	args := append([]string{"agent", "--kubeconfig", kc, "--namespace", f.ns, "--cluster", f.name, flag, owner, "--dir", dir,
		"--metrics-file", p.metrics}, extra...)
	p.cmd = exec.Command(etcdpkiBin(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("agent %s output:\n%s", owner, p.out.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit error.
func (p *agentProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		t.Fatalf("agent still running after %s:\n%s", timeout, p.out.String())
		return nil
	}
}

// approver approves and signs, with the test CA, every pending CSR of
// the fixture's cluster whose requester is the agent of the target its
// annotation names, and denies the others: the controller's part,
// test-only. It runs until the returned stop is called.
func (f *kubeFixture) approver(t *testing.T) (stop func()) { return f.approverDenying(t, "") }

// approverDenying is approver, but denies every request with reason
// when reason is not empty.
func (f *kubeFixture) approverDenying(t *testing.T, reason string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if l, err := f.cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{}); err == nil {
				for i := range l.Items {
					f.decide(ctx, &l.Items[i], reason)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func pending(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return false
		}
	}
	return true
}

func (f *kubeFixture) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, deny string) {
	if csr.Annotations[v1alpha1.AnnotationCluster] != f.ns+"/"+f.name || !pending(csr) {
		return
	}
	tg, ok := f.inv.Target(csr.Annotations[v1alpha1.AnnotationTarget])
	want := v1alpha1.ClientUser(tg.Owner)
	if tg.OwnerNode {
		want = v1alpha1.NodeUser(tg.Owner)
	}
	cond := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "TestApprover"}
	var cert []byte
	if deny != "" {
		cond.Type, cond.Message = certificatesv1.CertificateDenied, deny
	} else if !ok || csr.Spec.Username != want || csr.Spec.SignerName != v1alpha1.SignerFor(tg.Kind.Name) {
		cond.Type, cond.Message = certificatesv1.CertificateDenied, fmt.Sprintf("user %s may not ask for %s", csr.Spec.Username, tg.ID)
	} else if c, err := signCSR(f.authority, tg.Kind.Usages, f.c.Spec.Leaf.Validity, csr.Spec.Request, nil); err != nil {
		cond.Type, cond.Message = certificatesv1.CertificateDenied, err.Error()
	} else {
		cert = c
	}
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	csrs := f.cs.CertificatesV1().CertificateSigningRequests()
	upd, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	if err != nil || cert == nil {
		return
	}
	upd.Status.Certificate = cert
	csrs.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
}

// request stamps a renewal request for names on the EtcdCluster, as
// etcdpki rotate --kubeconfig does.
func (f *kubeFixture) request(t *testing.T, names ...string) time.Time {
	t.Helper()
	var ec v1alpha1.EtcdCluster
	key := client.ObjectKey{Namespace: f.ns, Name: f.name}
	ctx := context.Background()
	if err := f.env.Client.Get(ctx, key, &ec); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	ec.Request(at, names)
	if err := f.env.Client.Update(ctx, &ec); err != nil {
		t.Fatal(err)
	}
	return at
}

// waitInEffect waits until the status shows each target renewed at or
// after at, in effect, with the serial now on disk.
func (f *kubeFixture) waitInEffect(t *testing.T, at time.Time, timeout time.Duration, ts ...pki.Target) v1alpha1.EtcdClusterStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ec v1alpha1.EtcdCluster
		err := f.env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: f.name}, &ec)
		missing := ""
		for _, tg := range ts {
			e, ok := ec.Status.Certificate(tg.ID)
			switch {
			case err != nil:
				missing = err.Error()
			// RenewedAt is only ever set by an agent's report; a controller
			// running beside it may have proven the serial again since
			// (ProvenBy controller), which is as good.
			case !ok || e.RenewedAt == nil || e.RenewedAt.Time.Before(at) || !e.InEffect:
				missing = fmt.Sprintf("%s: %+v", tg.ID, e)
			case e.Serial != serialOn(t, tg):
				missing = fmt.Sprintf("%s: status serial %s, on disk %s", tg.ID, e.Serial, serialOn(t, tg))
			}
		}
		if missing == "" {
			return ec.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show every target renewed and in effect after %s: %s", timeout, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *kubeFixture) hostTargets(t *testing.T, owner string, node bool) []pki.Target {
	t.Helper()
	dir := f.c.Paths.ClientBundle(owner)
	if node {
		dir = f.c.Paths.NodeDir(owner)
	}
	_, ts, err := f.inv.OnHost(owner, dir)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestAgentThroughKubernetes runs `etcdpki agent` processes against a
// real kube-apiserver and a real etcd cluster; each subtest starts from
// what the one before left.
func TestAgentThroughKubernetes(t *testing.T) {
	f := startKube(t)
	node := f.c.Spec.Nodes[0].Name
	t.Run("RenewsItsNodeThroughCSRsAndStatusShowsThemInEffect", func(t *testing.T) { renewsThroughCSRs(t, f, node) })
	if t.Failed() {
		return
	}
	t.Run("DeniedIsLoggedAndRetriedWithBackoff", func(t *testing.T) { deniedAndRetried(t, f, f.c.Spec.Nodes[1].Name) })
	t.Run("FinishesWhenTheAPIServerReturns", func(t *testing.T) { outlivesTheAPIServer(t, f) })
	t.Run("KilledBetweenTheKeyAndTheSwitchConverges", func(t *testing.T) { killedWhileWaiting(t, f, node) })
	t.Run("NoPrivateKeyInAnyAPIObject", func(t *testing.T) { noPrivateKeyInTheAPI(t, f) })
}

func renewsThroughCSRs(t *testing.T, f *kubeFixture, node string) {
	defer f.approver(t)()
	ts := f.hostTargets(t, node, true)
	server, peer, hc := ts[0], ts[1], ts[2]
	before := map[string]string{server.ID: serialOn(t, server), peer.ID: serialOn(t, peer), hc.ID: serialOn(t, hc)}
	pid := f.c.Members[0].PID()
	p := f.startAgent(t, node, true)
	at := f.request(t, server.ID, peer.ID)
	f.waitInEffect(t, at, 90*time.Second, server, peer)
	for _, tg := range []pki.Target{server, peer} {
		if serialOn(t, tg) == before[tg.ID] {
			t.Errorf("%s: serial unchanged", tg.ID)
		}
	}
	if serialOn(t, hc) != before[hc.ID] {
		t.Errorf("%s: renewed, but the request did not name it", hc.ID)
	}
	// On the wire, as a client sees it.
	n := f.c.Spec.Nodes[0]
	cfg, err := probe.TLSConfig(peer.CAPath(), peer.CertPath(), peer.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ url, want string }{{n.ClientURLs[0], serialOn(t, server)}, {n.PeerURLs[0], serialOn(t, peer)}} {
		_, addr, _ := probe.ParseEndpoint(w.url)
		if got, err := runner.ServingSerial(context.Background(), addr, cfg); err != nil || got != w.want {
			t.Errorf("%s serves %s (%v), want %s", addr, got, err, w.want)
		}
	}
	if f.c.Members[0].PID() != pid {
		t.Error("the member restarted: a renewal restarts nothing")
	}
	evs, err := f.cs.CoreV1().Events(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	renewed := 0
	for _, e := range evs.Items {
		if e.Reason == "Renewed" && e.InvolvedObject.Name == f.name && e.Source.Component == "etcdpki-agent" {
			renewed++
		}
	}
	if renewed != 2 {
		t.Errorf("%d Renewed events, want one per renewed certificate (2)", renewed)
	}
	installsTheTrustCRL(t, f, node, pid)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 120*time.Second); err != nil {
		t.Errorf("agent stopped with %v, want exit 0 on SIGTERM", err)
	}
}

// installsTheTrustCRL: a CRL revoking a client's serial, published in the
// trust ConfigMap, lands in the running agent's bundle, and its member
// refuses that certificate at once, without a restart.
func installsTheTrustCRL(t *testing.T, f *kubeFixture, node string, pid int) {
	held := livetest.HoldPairs(t, f.c.Spec, "client/etcd-admin")[0]
	n := f.c.Spec.Nodes[0]
	_, addr, _ := probe.ParseEndpoint(n.ClientURLs[0])
	pool := livetest.CaPool(t, f.c)
	if v, err := probe.Present(context.Background(), addr, pool, held.Pair, 5*time.Second); err != nil || !v.Accepted {
		t.Fatalf("before the CRL: %s refused on %s (%v, %s)", held.ID, addr, err, v.How)
	}
	bundle := f.hostTargets(t, node, true)[0].CADir
	old, _ := pki.ReadStored(bundle, pki.CRLFile)
	l, err := pki.ParseCRL(old)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := new(big.Int).SetString(held.Serial, 16)
	crl, err := f.authority.SignCRL([]ca.Revocation{{Serial: serial, When: time.Now(), Reason: 1}}, new(big.Int).Add(l.Number, big.NewInt(1)), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	ctx := context.Background()
	if err := f.env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: v1alpha1.TrustConfigMapName(f.name)}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.BinaryData[v1alpha1.TrustCRL] = crl
	if err := f.env.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got, _ := pki.ReadStored(bundle, pki.CRLFile); bytes.Equal(got, crl) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the trust ConfigMap's CRL did not land in the bundle within 30s")
		}
	}
	if v, err := probe.Present(context.Background(), addr, pool, held.Pair, 5*time.Second); err != nil || v.Accepted {
		t.Errorf("after the CRL: revoked %s on %s: accepted=%v (%v, %s), want refused", held.ID, addr, v.Accepted, err, v.How)
	}
	if f.c.Members[0].PID() != pid {
		t.Error("the member restarted for the CRL: etcd reads it at every connection")
	}
}

// outlivesTheAPIServer: the apiserver stops while the agent waits for its
// certificate; the agent says so, waits, and finishes once it is back.
func outlivesTheAPIServer(t *testing.T, f *kubeFixture) {
	owner := cluster.ClientAPIServer
	tg := f.hostTargets(t, owner, false)[0]
	at := f.request(t, tg.ID)
	p := f.startAgent(t, owner, false, "--once")
	waitCSR(t, f, tg.ID, at)
	f.env.StopAPIServer(t)
	reach := fmt.Sprintf("etcdpki_agent_apiserver_reachable{cluster=%q,owner=%q}", f.c.Spec.Name, owner)
	waitFile(t, p.metrics, reach+" 0\n", 60*time.Second)
	f.env.StartAPIServer(t)
	defer f.approver(t)()
	if err := p.wait(t, 120*time.Second); err != nil {
		t.Fatalf("agent --once: %v, want exit 0", err)
	}
	f.waitInEffect(t, at, 90*time.Second, tg)
	out := p.out.String()
	for _, want := range []string{"apiserver unreachable", "apiserver reachable again"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent log lacks %q", want)
		}
	}
	waitFile(t, p.metrics, reach+" 1\n", 30*time.Second)
}

// waitCSR waits for the CSR the agent created for target after at.
func waitCSR(t *testing.T, f *kubeFixture, target string, at time.Time) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l, err := f.cs.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i, c := range l.Items {
			if c.Annotations[v1alpha1.AnnotationTarget] == target && !c.CreationTimestamp.Time.Before(at.Truncate(time.Second)) && pending(&c) {
				return &l.Items[i]
			}
		}
	}
	t.Fatalf("no CSR for %s within 60s", target)
	return nil
}

func waitFile(t *testing.T, path, want string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %q after %s:\n%s", path, want, timeout, data)
		}
	}
}

// killedWhileWaiting kills -9 an agent whose key exists only in its
// memory (its CSR is pending), signs that CSR anyway, and runs the agent
// again: it converges, and no key but those in effect at some point is
// anywhere in the host directory, nor the orphan certificate.
func killedWhileWaiting(t *testing.T, f *kubeFixture, node string) {
	dir := f.c.Paths.NodeDir(node)
	ts := f.hostTargets(t, node, true)
	installed := map[string]bool{}
	for k := range keysIn(t, dir) {
		installed[k] = true
	}
	before := tree(t, dir)
	at := f.request(t, node)
	p := f.startAgent(t, node, true, "--once")
	orphan := waitCSR(t, f, ts[0].ID, at)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, 30*time.Second)
	if tree(t, dir) != before {
		t.Fatal("killed while waiting for its certificate, but the host directory changed")
	}
	stop := f.approver(t)
	defer stop()
	var signed []byte
	for deadline := time.Now().Add(30 * time.Second); len(signed) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		c, err := f.cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), orphan.Name, metav1.GetOptions{})
		if err == nil {
			signed = c.Status.Certificate
		}
	}
	if len(signed) == 0 {
		t.Fatal("the orphan CSR was not signed")
	}
	again := f.startAgent(t, node, true, "--once")
	if err := again.wait(t, 120*time.Second); err != nil {
		t.Fatalf("agent --once after the kill: %v", err)
	}
	f.waitInEffect(t, at, 90*time.Second, ts...)
	for _, tg := range ts {
		_, k, _ := pki.ReadTargetPair(tg)
		installed[string(bytes.TrimSpace(k))] = true
	}
	for k, path := range keysIn(t, dir) {
		if !installed[k] {
			t.Errorf("%s holds a key that was never in effect", path)
		}
	}
	oc, _ := ca.ParseCert(signed)
	if strings.Contains(tree(t, dir), fmt.Sprintf("%x", oc.Raw)) || serialOn(t, ts[0]) == certx.Serial(oc) {
		t.Error("the certificate of the killed run is on the host")
	}
}

// noPrivateKeyInTheAPI lists every CSR, ConfigMap, EtcdCluster and
// Secret and finds no private key in any of them, in PEM or in DER.
func noPrivateKeyInTheAPI(t *testing.T, f *kubeFixture) {
	ctx := context.Background()
	var blobs []struct {
		what string
		data []byte
	}
	add := func(what string, data []byte) {
		blobs = append(blobs, struct {
			what string
			data []byte
		}{what, data})
	}
	csrs, err := f.cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil || len(csrs.Items) == 0 {
		t.Fatalf("list CSRs: %d, %v", len(csrs.Items), err)
	}
	for _, c := range csrs.Items {
		add("CSR "+c.Name+" request", c.Spec.Request)
		add("CSR "+c.Name+" certificate", c.Status.Certificate)
	}
	cms, err := f.cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cms.Items {
		for k, v := range c.Data {
			add("ConfigMap "+c.Namespace+"/"+c.Name+" "+k, []byte(v))
		}
		for k, v := range c.BinaryData {
			add("ConfigMap "+c.Namespace+"/"+c.Name+" "+k, v)
		}
	}
	secrets, err := f.cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			add("Secret "+s.Namespace+"/"+s.Name+" "+k, v)
		}
	}
	var ecs v1alpha1.EtcdClusterList
	if err := f.env.Client.List(ctx, &ecs); err != nil || len(ecs.Items) == 0 {
		t.Fatalf("list EtcdClusters: %v", err)
	}
	for _, ec := range ecs.Items {
		j, _ := json.Marshal(ec)
		add("EtcdCluster "+ec.Namespace+"/"+ec.Name, j)
	}
	for _, b := range blobs {
		if bytes.Contains(b.data, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a PEM private key", b.what)
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.data); err == nil {
			t.Errorf("%s is a DER private key", b.what)
		}
		if _, err := x509.ParseECPrivateKey(b.data); err == nil {
			t.Errorf("%s is a DER private key", b.what)
		}
	}
	if len(blobs) < len(csrs.Items) {
		t.Fatal("nothing looked at")
	}
}

// deniedAndRetried: a Denied CSR is logged with the signer's reason and
// recorded as a warning Event; the old pair keeps serving, and the agent
// asks again after a backoff, until it is signed.
func deniedAndRetried(t *testing.T, f *kubeFixture, node string) {
	tg := f.hostTargets(t, node, true)[0]
	old := serialOn(t, tg)
	stop := f.approverDenying(t, "SAN 10.9.9.9 belongs to nobody")
	p := f.startAgent(t, node, true)
	at := f.request(t, tg.ID)
	for deadline := time.Now().Add(60 * time.Second); countCSRs(t, f, tg.ID, at) < 2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no second CSR for %s within 60s after a denial:\n%s", tg.ID, p.out.String())
		}
	}
	stop()
	if !strings.Contains(p.out.String(), "SAN 10.9.9.9 belongs to nobody") {
		t.Errorf("the denial's reason is not in the agent's log:\n%s", p.out.String())
	}
	if serialOn(t, tg) != old {
		t.Error("the pair changed although every request was denied")
	}
	evs, err := f.cs.CoreV1().Events(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range evs.Items {
		warned = warned || e.Type == corev1.EventTypeWarning && e.Reason == "RenewFailed" && strings.Contains(e.Message, "belongs to nobody")
	}
	if !warned {
		t.Error("no RenewFailed warning Event with the reason")
	}
	defer f.approver(t)()
	f.waitInEffect(t, at, 90*time.Second, tg)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 120*time.Second); err != nil {
		t.Errorf("agent stopped with %v, want exit 0 on SIGTERM", err)
	}
}

// countCSRs counts the CSRs made for target since at.
func countCSRs(t *testing.T, f *kubeFixture, target string, at time.Time) int {
	t.Helper()
	l, err := f.cs.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range l.Items {
		if c.Annotations[v1alpha1.AnnotationTarget] == target && !c.CreationTimestamp.Time.Before(at.Truncate(time.Second)) {
			n++
		}
	}
	return n
}
