package e2e

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/export"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/selfhost"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// The fleet of BenchmarkFleet: fleetClusters EtcdClusters of
// fleetMembers members each, in one namespace (the controller watches
// one). ETCDPKI_FLEET_CLUSTERS makes it smaller for a quick look.
const (
	fleetClusters  = 100
	fleetMembers   = 5
	fleetNamespace = "etcd-system" // deploy/controller-rbac.yaml's ClusterRoleBinding names it
	// fleetController is the ServiceAccount deploy/controller-rbac.yaml
	// binds, as the apiserver names it: the controller process
	// authenticates as that user (a client certificate with that CN).
	fleetController = "system:serviceaccount:" + fleetNamespace + ":etcdpki-controller"
)

// BenchmarkFleet measures one `etcdpki controller` process serving a
// fleet: 100 EtcdClusters of 5 members, each with its own CA (made by
// issue.Init, handed over by export.Run: the CA Secret, the trust
// ConfigMap and the EtcdCluster), and in-process agents, one per node
// (etcdpki:node:NODE) and one per cluster's kube-apiserver
// (etcdpki:client:kube-apiserver), each renewing its certificates as
// the agent does up to the switch: its EtcdCluster read and expanded,
// a new key in memory (ca.NewCSR with the spec's key settings), the
// CSR (kube.CSRFor) created and waited for (kube.RequestCertificate),
// and the certificate checked against the bundle's CA and CRL
// (pki.CheckIssued, pki.RevokedInBundle). No member runs: nothing is
// switched or proven on the wire, and the controller's prober, at its
// default interval, finds every member unreachable (Degraded).
//
// It reports the time for the whole fleet's renewal, CSRs/s, and the
// controller's memory: peak RSS (VmHWM), RSS after the fleet settled
// (one probe interval after the last certificate), and its Go heap from
// its metrics endpoint.
func BenchmarkFleet(b *testing.B) {
	n := fleetSize(b)
	e := kubetest.Start(b)
	ctx := context.Background()
	ns := e.Namespace(b, fleetNamespace)
	e.Apply(b, "deploy/agent-rbac.yaml", ns)
	e.Apply(b, "deploy/controller-rbac.yaml", ns)
	t0 := time.Now()
	fleet := exportFleet(b, ctx, e, ns, n)
	b.Logf("init and export of %d clusters: %s", n, time.Since(t0).Round(time.Millisecond))
	grantCASecrets(b, ctx, e.Client, ns, fleet)
	kc, _ := e.AddUser(b, fleetController, "system:serviceaccounts", "system:serviceaccounts:"+fleetNamespace)

	t0 = time.Now()
	agents := fleetAgents(b, ctx, e, ns, fleet)
	b.Logf("%d agent identities: %s", len(agents), time.Since(t0).Round(time.Millisecond))

	metrics := freeAddr(b)
	// The probe interval stays at its default: the prober's rounds over
	// the fleet are part of what the controller holds and does.
	ctrl := selfhost.StartEtcdpki(b, "controller", "controller", "--kubeconfig", kc, "--namespace", ns,
		"--metrics-bind-address", metrics, "--health-probe-bind-address", "0")
	t0 = time.Now()
	waitProbed(b, ctx, e.Client, ns, n, ctrl)
	b.Logf("controller up and every cluster probed once: %s", time.Since(t0).Round(time.Millisecond))

	csrs := 0
	for _, a := range agents {
		csrs += len(a.targets)
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		renewFleet(b, ctx, agents)
		total += time.Since(start)
	}
	b.StopTimer()
	checkAllSigned(b, ctx, e.Client, csrs*b.N)

	// One revocation per cluster, all at once: the controller signs and
	// publishes each cluster's CRL. No member runs, so the proof (every
	// member refusing the serial) cannot be made here and each entry
	// stays pending: BenchmarkRevokeThroughController measures the
	// whole revocation on running members.
	fast := fastClient(b, e.Config)
	t0 = time.Now()
	serials := revokeFleet(b, ctx, fast, ns, fleet)
	waitCRLs(b, ctx, fast, ns, serials, ctrl)
	published := time.Since(t0)
	b.Logf("one revocation in each of %d clusters: every CRL signed and published in %s", n, published.Round(time.Millisecond))

	// Settled: a whole probe round after the last certificate.
	time.Sleep(35 * time.Second)
	select {
	case <-ctrl.Exited():
		b.Fatalf("the controller exited; its output:\n%s", ctrl.Output())
	default:
	}
	logThrottling(b, ctrl.Output())
	status := procStatus(b, ctrl.PID())
	heap := scrape(b, metrics)
	b.ReportMetric(total.Seconds()/float64(b.N), "s/fleet")
	b.ReportMetric(float64(csrs*b.N)/total.Seconds(), "CSRs/s")
	b.ReportMetric(float64(csrs), "CSRs/fleet")
	b.ReportMetric(published.Seconds(), "s/fleet-CRLs-published")
	b.ReportMetric(status["VmHWM"]/1024, "peak-RSS-MiB")
	b.ReportMetric(status["VmRSS"]/1024, "settled-RSS-MiB")
	b.ReportMetric(heap["go_memstats_heap_alloc_bytes"]/(1<<20), "heap-alloc-MiB")
	b.ReportMetric(heap["go_memstats_heap_inuse_bytes"]/(1<<20), "heap-inuse-MiB")
	b.ReportMetric(heap["go_memstats_sys_bytes"]/(1<<20), "go-sys-MiB")
}

// revokeFleet adds one serial (no longer in use) to each cluster's
// spec.revocations, as certs revoke --serial does, and returns them by
// cluster.
func revokeFleet(b *testing.B, ctx context.Context, c client.Client, ns string, fleet []fleetMember) map[string]string {
	b.Helper()
	out := map[string]string{}
	now := metav1.Now()
	errs := make([]error, len(fleet))
	var wg sync.WaitGroup
	for i, m := range fleet {
		out[m.name] = fmt.Sprintf("7e5%04x", i+1)
		wg.Go(func() {
			var ec v1alpha1.EtcdCluster
			if errs[i] = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.name}, &ec); errs[i] != nil {
				return
			}
			before := ec.DeepCopy()
			ec.Spec.Revocations = append(ec.Spec.Revocations, v1alpha1.RevocationSpec{Serial: out[m.name], Reason: "keyCompromise", RequestedAt: &now})
			errs[i] = c.Patch(ctx, &ec, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// fastClient is an admin client without client-go's default rate limit
// (5/s): the benchmark's own requests must not be what it measures.
func fastClient(b *testing.B, cfg *rest.Config) client.Client {
	b.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// waitCRLs waits until each cluster's trust ConfigMap holds a CRL, signed
// by its CA, that lists its serial, and its status shows the revocation
// in progress (not enforced: no member runs to prove it).
func waitCRLs(b *testing.B, ctx context.Context, c client.Client, ns string, serials map[string]string, ctrl *selfhost.Process) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		done := 0
		var cms corev1.ConfigMapList
		if err := c.List(ctx, &cms, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		for _, cm := range cms.Items {
			name, _ := strings.CutSuffix(cm.Name, v1alpha1.TrustConfigMapName(""))
			serial, ok := serials[name]
			if !ok {
				continue
			}
			if l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL]); err == nil && slices.ContainsFunc(l.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
				return fmt.Sprintf("%x", e.SerialNumber) == serial
			}) {
				done++
			}
		}
		if done == len(serials) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d CRLs published after 10 minutes; the controller's output:\n%s", done, len(serials), ctrl.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name, serial := range serials {
		var ec v1alpha1.EtcdCluster
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ec); err != nil {
			b.Fatal(err)
		}
		if st, ok := ec.Status.Revocation(serial); ok && st.Enforced {
			b.Errorf("%s: revocation of %s enforced with no member running: %s", name, serial, st.Message)
		}
	}
}

// fleetSize is ETCDPKI_FLEET_CLUSTERS, or fleetClusters.
func fleetSize(b *testing.B) int {
	s := os.Getenv("ETCDPKI_FLEET_CLUSTERS")
	if s == "" {
		return fleetClusters
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 250 {
		b.Fatalf("ETCDPKI_FLEET_CLUSTERS=%q: want a number of clusters from 1 to 250", s)
	}
	return n
}

// fleetMember is one cluster of the fleet as the admin host made it.
type fleetMember struct {
	name string
	inv  *pki.Inventory
}

// exportFleet makes n PKIs with issue.Init from spec files and exports
// each with export.Run, as `etcdpki init` and `etcdpki export` do. Node
// j of cluster i is on 127.0.i.j, ports 1 and 2 (nothing listens: a
// probe is refused at once).
func exportFleet(b *testing.B, ctx context.Context, e *kubetest.Env, ns string, n int) []fleetMember {
	b.Helper()
	dir := b.TempDir()
	var fleet []fleetMember
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("fleet-%03d", i)
		var spec strings.Builder
		fmt.Fprintf(&spec, "name: %s\npkiDir: %s\nnodes:\n", name, filepath.Join(dir, name))
		for j := 1; j <= fleetMembers; j++ {
			fmt.Fprintf(&spec, "  - {name: %s-node-%d, ips: [127.0.%d.%d], clientPort: 1, peerPort: 2}\n", name, j, i, j)
		}
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(spec.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		s, err := cluster.Load(path, cluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		inv := pki.New(s)
		if _, err := issue.Init(ctx, inv, issue.Options{Out: io.Discard}); err != nil {
			b.Fatalf("init %s: %v", name, err)
		}
		if _, err := export.Run(ctx, inv, export.Options{Client: e.Client, Namespace: ns, Out: io.Discard}); err != nil {
			b.Fatalf("export %s: %v", name, err)
		}
		fleet = append(fleet, fleetMember{name: name, inv: inv})
	}
	return fleet
}

// grantCASecrets does what deploy/controller-rbac.yaml tells the
// operator to: add each EtcdCluster's CA Secret to the names the
// controller's Role may get.
func grantCASecrets(b *testing.B, ctx context.Context, c client.Client, ns string, fleet []fleetMember) {
	b.Helper()
	var r rbacv1.Role
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "etcdpki-controller"}, &r); err != nil {
		b.Fatal(err)
	}
	granted := false
	for i, rule := range r.Rules {
		if len(rule.Resources) == 1 && rule.Resources[0] == "secrets" {
			r.Rules[i].ResourceNames = nil
			for _, m := range fleet {
				r.Rules[i].ResourceNames = append(r.Rules[i].ResourceNames, v1alpha1.CASecretName(m.name))
			}
			granted = true
		}
	}
	if !granted {
		b.Fatal("deploy/controller-rbac.yaml: no rule on secrets in the Role etcdpki-controller")
	}
	if err := c.Update(ctx, &r); err != nil {
		b.Fatal(err)
	}
}

// fleetAgent is one host's agent: its identity's clients, and what it
// renews (found from its EtcdCluster at start, as the agent does).
type fleetAgent struct {
	key     client.ObjectKey
	owner   string
	root    string // the bundle's root: the host directory it was deployed into
	c       client.Client
	cs      kubernetes.Interface
	targets []pki.Target
}

// fleetAgents makes the identity of every node's agent (one user each)
// and of the kube-apiserver agents (etcdpki:client:kube-apiserver, one
// credential for the 100 hosts: the signer checks the name), and reads
// each agent's EtcdCluster once, as an agent does when it starts.
func fleetAgents(b testing.TB, ctx context.Context, e *kubetest.Env, ns string, fleet []fleetMember) []*fleetAgent {
	b.Helper()
	_, apiCfg := e.AddUser(b, v1alpha1.ClientUser(cluster.ClientAPIServer), v1alpha1.AgentGroup)
	var agents []*fleetAgent
	for _, m := range fleet {
		owners := []string{cluster.ClientAPIServer}
		for _, n := range m.inv.Spec.Nodes {
			owners = append(owners, n.Name)
		}
		for _, owner := range owners {
			cfg := apiCfg
			if owner != cluster.ClientAPIServer {
				_, cfg = e.AddUser(b, v1alpha1.NodeUser(owner), v1alpha1.AgentGroup)
			}
			bundle, ok := m.inv.Bundle(owner)
			if !ok {
				b.Fatalf("%s: no bundle for %s", m.name, owner)
			}
			a := &fleetAgent{key: client.ObjectKey{Namespace: ns, Name: m.name}, owner: owner, root: bundle.Root}
			a.c, a.cs = agentClients(b, cfg)
			ts, err := a.read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			a.targets = ts
			agents = append(agents, a)
		}
	}
	return agents
}

func agentClients(b testing.TB, cfg *rest.Config) (client.Client, kubernetes.Interface) {
	b.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "etcdpki"
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c, cs
}

// read is the start of an agent's pass: its EtcdCluster read, its spec
// expanded, and the host's targets taken from it.
func (a *fleetAgent) read(ctx context.Context) ([]pki.Target, error) {
	var ec v1alpha1.EtcdCluster
	if err := a.c.Get(ctx, a.key, &ec); err != nil {
		return nil, fmt.Errorf("%s: read EtcdCluster %s: %w", a.owner, a.key, err)
	}
	spec, err := ec.Cluster(cluster.Options{})
	if err != nil {
		return nil, err
	}
	_, ts, err := pki.New(spec).OnHost(a.owner, a.root)
	return ts, err
}

// renew is one agent's pass over its certificates, one after the other
// as the agent renews them: steps 1 to 3 of the agent (key and request,
// the certificate through the CSR API, checked), not the switch and the
// proof, which need the members.
func (a *fleetAgent) renew(ctx context.Context) error {
	var ec v1alpha1.EtcdCluster
	if err := a.c.Get(ctx, a.key, &ec); err != nil {
		return fmt.Errorf("%s: read EtcdCluster %s: %w", a.owner, a.key, err)
	}
	spec, err := ec.Cluster(cluster.Options{})
	if err != nil {
		return err
	}
	for _, t := range a.targets {
		csrPEM, keyPEM, err := ca.NewCSR(t.Request(spec.Leaf))
		if err != nil {
			return err
		}
		certPEM, err := kube.RequestCertificate(ctx, a.cs, kube.CSRFor(ec.Namespace, ec.Name, t, csrPEM), kube.DefaultBackoff, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", t.ID, err)
		}
		cas, err := pki.BundleCAs(t.CADir)
		if err != nil {
			return err
		}
		cert, err := pki.CheckIssued(t, cas, certPEM, keyPEM, time.Now())
		if err != nil {
			return fmt.Errorf("%s/%s: %w", ec.Name, t.ID, err)
		}
		if revoked, err := pki.RevokedInBundle(t.CADir, certx.Serial(cert)); err != nil || revoked {
			return fmt.Errorf("%s/%s: serial %s revoked (%v) or the CRL unreadable: %v", ec.Name, t.ID, certx.Serial(cert), revoked, err)
		}
	}
	return nil
}

// renewFleet runs every agent's pass at once, as a fleet whose
// renewal falls due together (or is requested for all) does.
func renewFleet(b testing.TB, ctx context.Context, agents []*fleetAgent) {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute) // a guard against a hang, not a measure
	defer cancel()
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Go(func() { errs[i] = a.renew(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// waitProbed waits until the controller has written a Degraded
// condition on each of the n EtcdClusters: it holds them all and its
// prober has been round once.
func waitProbed(b testing.TB, ctx context.Context, c client.Client, ns string, n int, ctrl *selfhost.Process) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var l v1alpha1.EtcdClusterList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		probed := 0
		for _, ec := range l.Items {
			if meta.FindStatusCondition(ec.Status.Conditions, v1alpha1.ConditionDegraded) != nil {
				probed++
			}
		}
		if probed == n {
			return
		}
		select {
		case <-ctrl.Exited():
			b.Fatalf("the controller exited; its output:\n%s", ctrl.Output())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d EtcdClusters probed after 10 minutes; the controller's output:\n%s", probed, n, ctrl.Output())
		}
		time.Sleep(time.Second)
	}
}

// checkAllSigned wants want CSRs, every one approved and issued, none
// denied or failed.
func checkAllSigned(b testing.TB, ctx context.Context, c client.Client, want int) {
	b.Helper()
	var l certificatesv1.CertificateSigningRequestList
	if err := c.List(ctx, &l); err != nil {
		b.Fatal(err)
	}
	signed := 0
	for _, r := range l.Items {
		approved := false
		for _, cond := range r.Status.Conditions {
			switch cond.Type {
			case certificatesv1.CertificateApproved:
				approved = true
			case certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
				b.Errorf("CSR %s: %s: %s", r.Name, cond.Type, cond.Message)
			}
		}
		if approved && len(r.Status.Certificate) > 0 {
			signed++
		}
	}
	if signed != want || len(l.Items) != want {
		b.Fatalf("%d CSRs, %d of them approved and signed; want %d of %d", len(l.Items), signed, want, want)
	}
}

// logThrottling says how often the controller waited over a second at
// its own client's rate limiter (--kube-api-qps, --kube-api-burst), and
// on what: client-go logs such a wait at most every 10 s, so the counts
// are a lower bound. With client-go's default of 5/s this was what set
// the fleet's rate (2.5 CSRs/s); hence the controller's 50/s.
func logThrottling(b *testing.B, out string) {
	b.Helper()
	n, on := 0, map[string]int{}
	var longest float64
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "client-side throttling") {
			continue
		}
		n++
		var w struct {
			Delay float64 `json:"delay"`
			Verb  string  `json:"verb"`
			URL   string  `json:"URL"`
		}
		if i := strings.Index(l, "{"); i >= 0 && json.Unmarshal([]byte(l[i:]), &w) == nil {
			longest = max(longest, w.Delay)
			on[w.Verb+" "+resourceOf(w.URL)]++
		}
	}
	if n > 0 {
		b.Logf("the controller logged %d waits of over 1 s at its client-side rate limiter (at most one per 10 s is logged), the longest %.1f s; on: %v", n, longest, on)
	}
}

// resourceOf names the resource of a request URL, with its
// subresource: ".../certificatesigningrequests/NAME/approval" is
// "certificatesigningrequests/approval".
func resourceOf(url string) string {
	path, _, _ := strings.Cut(url, "?")
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch p {
		case "certificatesigningrequests", "etcdclusters", "events", "configmaps", "secrets", "leases":
			if i+2 < len(parts) {
				return p + "/" + parts[i+2]
			}
			return p
		}
	}
	return path
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// procStatus reads the kB figures of /proc/PID/status (VmHWM, VmRSS...).
func procStatus(b *testing.B, pid int) map[string]float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
			m[k] = n
		}
	}
	for _, k := range []string{"VmHWM", "VmRSS"} {
		if _, ok := m[k]; !ok {
			b.Fatalf("/proc/%d/status has no %s", pid, k)
		}
	}
	return m
}

// scrape reads the unlabelled samples of the controller's metrics
// endpoint (Prometheus text format), and wants its Go heap among them.
func scrape(b *testing.B, addr string) map[string]float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s/metrics: %s", addr, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			m[name] = n
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes"} {
		if _, ok := m[k]; !ok {
			b.Fatalf("the controller's metrics have no %s", k)
		}
	}
	return m
}
