package rotate_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubeadmcerts"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
)

// servedSerials is every member's client and peer port serial as a fresh
// handshake sees it, by target ID.
func servedSerials(t *testing.T, s *cluster.Spec, cfg *tls.Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range s.Nodes {
		for kind, u := range map[string]string{ca.KindServer.Name: n.ClientURLs[0], ca.KindPeer.Name: n.PeerURLs[0]} {
			c := cfg.Clone()
			c.InsecureSkipVerify = true
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cert, err := probe.ServingCert(ctx, strings.TrimPrefix(u, "https://"), c)
			cancel()
			if err != nil {
				t.Fatalf("%s %s: %v", n.Name, u, err)
			}
			out[n.Name+"/"+kind] = certx.Serial(cert)
		}
	}
	return out
}

// TestRotateAfterAdoptRenewsAKubeadmCluster adopts a cluster running on
// kubeadm's certificates (one node's only held on its host), then renews
// everything: every certificate, the held ones included, is reissued,
// deployed through the node's template into kubeadm's paths and proven
// on the wire, with no restart and no failed request under load. A CA
// rotation then completes on the adopted PKI.
func TestRotateAfterAdoptRenewsAKubeadmCluster(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{})
	s := c.Spec
	// The operator's template for restarting kube-apiserver, which reads
	// --etcd-cafile only at start: the CA rotation runs it.
	s.Clients = slices.Clone(s.Clients)
	for i := range s.Clients {
		if s.Clients[i].Name == cluster.ClientAPIServer {
			s.Clients[i].Restart = "true"
		}
	}
	var out bytes.Buffer
	_, err := adopt.Run(context.Background(), pki.New(s), adopt.Options{
		CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key"),
		NodeDirs:   map[string]string{"etcd-1": c.NodePKI(1), "etcd-2": c.NodePKI(2)},
		ClientDirs: map[string]string{cluster.ClientAPIServer: c.APIServerPKI},
		Out:        &out,
	})
	if err != nil {
		t.Fatalf("adopt: %v\n%s", err, out.String())
	}
	before, pids0, term0 := servedSerials(t, s, c.APIServerTLS()), livetest.Pids(c.Cluster), livetest.RaftTerm(t, c.Cluster)

	// Nothing is due yet: a routine run leaves the held certificates
	// alone and exports their expiry with the others'.
	metrics := filepath.Join(t.TempDir(), "etcdpki.prom")
	out.Reset()
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Out: &out, MetricsFile: metrics}); err != nil {
		t.Fatalf("routine rotate: %v\n%s", err, out.String())
	}
	prom, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	heldCert, _ := pki.New(s).Target("etcd-3/etcd-server")
	want := fmt.Sprintf("etcdpki_cert_expiry_timestamp_seconds{cluster=%q,cert=%q} %d", s.Name, heldCert.ID, readCertFile(t, heldCert.Held).NotAfter.Unix())
	if !strings.Contains(string(prom), want) {
		t.Errorf("metrics lack the held certificate's expiry %q:\n%s", want, prom)
	}
	if got := servedSerials(t, s, c.APIServerTLS()); !maps.Equal(got, before) {
		t.Errorf("a routine run changed served serials: %v, was %v", got, before)
	}

	out.Reset()
	ld := livetest.StartLoad(t, c.Cluster)
	res, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
	st := ld.Stop()
	t.Logf("rotate:\n%s", out.String())
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	t.Logf("load: %d requests, %d failed, worst %s", st.Ops, st.Fails, st.Worst)
	if st.Fails != 0 {
		t.Errorf("%d requests failed under load: %v", st.Fails, st.Failures)
	}
	livetest.CheckAcked(t, c.Cluster, c.APIServerTLS(), st)
	if len(res.Members) != 0 || !maps.Equal(pids0, livetest.Pids(c.Cluster)) {
		t.Errorf("restarted %v; pids before %v, after %v", res.Members, pids0, livetest.Pids(c.Cluster))
	}
	if len(res.Proofs) != len(s.Nodes) {
		t.Errorf("proved %d members, want %d", len(res.Proofs), len(s.Nodes))
	}
	if d := livetest.RaftTerm(t, c.Cluster) - term0; d != 0 {
		t.Errorf("%d leader changes, want none", d)
	}
	after := servedSerials(t, s, c.APIServerTLS())
	inv := pki.New(s)
	for id, old := range before {
		tg, _ := inv.Target(id)
		disk := serialOf(t, tg.CertPath())
		if after[id] == old || after[id] != disk {
			t.Errorf("%s: served %s, was %s, the PKI holds %s; want the renewed one served", id, after[id], old, disk)
		}
	}
	infos, err := pki.List(inv, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Status != pki.StatusOK {
			t.Errorf("%s after rotate: %s (%s), want ok", info.Name, info.Status, info.Reason)
		}
	}

	// adopt run again never takes the PKI back: the hosts' directories
	// now hold the renewed pairs (the deploy put them there), and the
	// control plane's old copy of the apiserver's pair is kept out.
	diskBefore := map[string]string{}
	for _, tg := range inv.Targets {
		diskBefore[tg.ID] = serialOf(t, tg.CertPath())
	}
	out.Reset()
	if _, err := adopt.Run(context.Background(), pki.New(s), adopt.Options{
		CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key"),
		NodeDirs:   map[string]string{"etcd-1": c.NodePKI(1), "etcd-2": c.NodePKI(2)},
		ClientDirs: map[string]string{cluster.ClientAPIServer: c.APIServerPKI},
		Out:        &out,
	}); err != nil {
		t.Fatalf("adopt again: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "[keep] apiserver-etcd-client") {
		t.Errorf("adopt again does not say it kept the renewed apiserver pair:\n%s", out.String())
	}
	for _, tg := range inv.Targets {
		if got := serialOf(t, tg.CertPath()); got != diskBefore[tg.ID] {
			t.Errorf("%s: adopt again replaced the renewed serial %s with %s", tg.ID, diskBefore[tg.ID], got)
		}
	}

	// The CA rotation's stages restart members (etcd reads its CA only at
	// start), so the apiserver's view follows the PKI's bundle from here.
	caFile, crt, key := etcdtest.APIServerFiles(inv.Paths)
	out.Reset()
	cres, err := carotate.Run(context.Background(), pki.New(s), carotate.Options{Out: &out})
	t.Logf("ca rotate:\n%s", out.String())
	if err != nil {
		t.Fatalf("ca rotate: %v", err)
	}
	if len(cres.Stages) == 0 || cres.Stages[len(cres.Stages)-1].Stage != pki.CAStageFinish {
		t.Errorf("ca rotate stopped at %+v", cres.Stages)
	}
	cfg, err := etcdtest.TLSConfig(caFile, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	c.UseAPIServerTLS(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Errorf("after the CA rotation, with the new CA's apiserver bundle: %v", err)
	}
}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serialOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return livetest.SerialOfPEM(t, b)
}
