package etcdtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestCluster runs one 3-member cluster from etcdpki's own files and checks,
// in order, what kube-apiserver and etcd's probes rely on, what must be
// refused, and that the cluster grows by a member added to the spec.
// The subtests share the cluster (starting one costs seconds), so they run
// in sequence and each leaves it healthy.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, etcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("forms over peer mTLS", func(t *testing.T) {
		cli := c.Client(t)
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ml.Members) != 3 {
			t.Fatalf("member list has %d members, want 3: %v", len(ml.Members), ml.Members)
		}
		for _, m := range ml.Members {
			want := c.Member(m.Name)
			if want == nil {
				t.Fatalf("unexpected member %q", m.Name)
			}
			if len(m.PeerURLs) != 1 || m.PeerURLs[0] != want.PeerURL {
				t.Errorf("member %s peer URLs %v, want [%s]", m.Name, m.PeerURLs, want.PeerURL)
			}
			cfg, err := pki.ReadNodeConfig(want.ConfigFile)
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.PeerTransportSecurity.ClientCertAuth || cfg.InitialClusterState != "new" {
				t.Errorf("%s: peer client-cert-auth %v, initial-cluster-state %q; want true, new", want.ConfigFile,
					cfg.PeerTransportSecurity.ClientCertAuth, cfg.InitialClusterState)
			}
		}
		if _, err := c.Leader(ctx); err != nil {
			t.Fatal(err)
		}
		// The peer port is mTLS too: without a peer certificate a
		// connection is refused.
		want := etcdtest.RefusalAlert(t, "tls: certificate required")
		for _, m := range c.Members {
			err := handshake(t, m.PeerURL, tlsConfig(t, c.CAFile(), "", ""))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("peer port of %s without a certificate: %v, want a %q alert", m.Name, err, want)
			}
		}
	})

	t.Run("apiserver cert reads and writes through every endpoint", func(t *testing.T) {
		for _, w := range c.Members {
			key := "/registry/etcdtest/" + w.Name
			if _, err := w.Client(t).Put(ctx, key, "written via "+w.Name); err != nil {
				t.Fatalf("put via %s: %v", w.Name, err)
			}
			for _, r := range c.Members {
				resp, err := r.Client(t).Get(ctx, key) // linearizable
				if err != nil {
					t.Fatalf("get %s via %s: %v", key, r.Name, err)
				}
				if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "written via "+w.Name {
					t.Errorf("get %s via %s: %v", key, r.Name, resp.Kvs)
				}
			}
		}
	})

	t.Run("etcdctl health with the healthcheck cert agrees", func(t *testing.T) {
		checkHealth(ctx, t, c, 3)
	})

	// Another CA, with the same nodes: its certificates are well formed
	// and name the right hosts, and must still be refused.
	foreign := foreignPKI(t, c.File)

	refused := []struct {
		name string
		cfg  func(t *testing.T) *tls.Config
		// alert is what the client reads (it depends on the Go etcd was
		// built with: see RefusalAlert); logged is the server's reason.
		alert, logged string
	}{
		{"no client cert", func(t *testing.T) *tls.Config {
			return tlsConfig(t, c.CAFile(), "", "")
		}, etcdtest.RefusalAlert(t, "tls: certificate required"), "didn't provide a certificate"},
		{"client cert from another CA", func(t *testing.T) *tls.Config {
			_, crt, key := etcdtest.APIServerFiles(foreign)
			return tlsConfig(t, c.CAFile(), crt, key)
		}, etcdtest.RefusalAlert(t, "tls: unknown certificate authority"), "certificate signed by unknown authority"},
		{"server-only cert as client", func(t *testing.T) *tls.Config {
			crt, key := serverOnlyCert(t, c.Paths)
			return tlsConfig(t, c.CAFile(), crt, key)
		}, "tls: bad certificate", "incompatible key usage"},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			for _, m := range c.Members {
				err := handshake(t, m.ClientURL, cfg)
				if err == nil || !strings.Contains(err.Error(), tc.alert) {
					t.Errorf("%s: handshake error %v, want %q", m.Name, err, tc.alert)
				}
			}
			m := c.Members[0]
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			defer lcancel()
			if err := m.WaitLog(lctx, tc.logged); err != nil {
				t.Errorf("the member does not log why it refused: %v", err)
			}
			// And a real etcd client with that material gets nothing.
			cli := c.ClientTLS(t, cfg, m.ClientURL)
			gctx, gcancel := context.WithTimeout(ctx, time.Second)
			defer gcancel()
			if _, err := cli.Get(gctx, "/registry/etcdtest/"+m.Name); err == nil {
				t.Errorf("get with %s succeeded", tc.name)
			}
		})
	}

	t.Run("grows to four members", func(t *testing.T) {
		m4 := c.AddNode(t, nil)
		cfg, err := pki.ReadNodeConfig(m4.ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.InitialClusterState != "existing" {
			t.Fatalf("%s: initial-cluster-state %q, want existing for a member added to a running cluster", m4.ConfigFile, cfg.InitialClusterState)
		}
		if !strings.Contains(cfg.InitialCluster, m4.Name+"="+m4.PeerURL) || strings.Count(cfg.InitialCluster, "=") != 4 {
			t.Errorf("%s: initial-cluster %q, want all four members", m4.ConfigFile, cfg.InitialCluster)
		}
		memberAdd(ctx, t, c.Client(t, c.Endpoints()[:3]...), m4)
		if err := m4.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		ml, err := c.Client(t).MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ml.Members) != 4 {
			t.Fatalf("member list has %d members, want 4", len(ml.Members))
		}
		for _, m := range ml.Members {
			if m.Name == "" || m.IsLearner {
				t.Errorf("member %x (%q) has not joined as a voting member", m.ID, m.Name)
			}
		}
		checkHealth(ctx, t, c, 4)
	})

	t.Run("member with a peer cert from another CA cannot join", func(t *testing.T) {
		m5 := c.AddNode(t, nil)
		other := foreignPKI(t, c.File)
		crt, key := etcdtest.NodePair(c.Paths, m5.Name, "peer")
		ocrt, okey := etcdtest.NodePair(other, m5.Name, "peer")
		replaceFile(t, crt, ocrt)
		replaceFile(t, key, okey)

		add := memberAdd(ctx, t, c.Client(t, c.Endpoints()[:4]...), m5)
		if err := m5.Start(); err != nil {
			t.Fatal(err)
		}
		// The running members refuse its peer connections, so it cannot
		// even fetch the membership it is to join, and gives up.
		exited, status := m5.Exited()
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			t.Fatalf("%s with a foreign peer cert is still running", m5.Name)
		}
		if status() == nil {
			t.Errorf("%s exited successfully", m5.Name)
		}
		if want, log := etcdtest.RefusalAlert(t, "tls: unknown certificate authority"), m5.Log(); !strings.Contains(log, want) {
			t.Errorf("%s's log does not say its peer cert was refused (%q):\n%s", m5.Name, want, m5.LogTail(40))
		}
		if _, err := c.Client(t, c.Endpoints()[:4]...).MemberRemove(ctx, add.Member.ID); err != nil {
			t.Fatalf("member remove %s: %v", m5.Name, err)
		}
		ok := c.Members[:4]
		for _, m := range ok {
			if err := m.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
		}
		ml, err := c.Client(t, c.Endpoints()[:4]...).MemberList(ctx)
		if err != nil || len(ml.Members) != 4 {
			t.Fatalf("member list after removing %s: %v, %v", m5.Name, ml, err)
		}
	})
}

// TestMemberLifecycle checks the harness's process control: a graceful
// stop of the leader, a kill -9, and restarts both direct and through the
// control command that rotate's restart templates run.
func TestMemberLifecycle(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, etcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := c.Client(t)
	put := func(t *testing.T, v string) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		defer pcancel()
		if _, err := cli.Put(pctx, "k", v); err != nil {
			t.Fatalf("put %s: %v", v, err)
		}
	}

	t.Run("stop the leader", func(t *testing.T) {
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := leader.Stop(); err != nil {
			t.Fatal(err)
		}
		if leader.Running() || leader.PID() != 0 {
			t.Fatalf("%s still running after Stop", leader.Name)
		}
		put(t, "without the old leader")
		next, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if next == leader {
			t.Fatalf("%s still leads after it stopped", leader.Name)
		}
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill -9 a follower and restart it", func(t *testing.T) {
		// A follower: killing the leader can strand a proposal in flight
		// until etcd's 7 s request timeout, which is etcd's behaviour,
		// not the harness's.
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := c.Members[0]
		if m == leader {
			m = c.Members[1]
		}
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		_, status := m.Exited()
		if err := status(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("%s exit status %v, want killed", m.Name, err)
		}
		// Through the leader's endpoint: a write in flight on the killed
		// member's connection fails with EOF, and clientv3 rightly does
		// not retry a write it may have sent. That is client failover,
		// not what this subtest checks (the cluster serves without m).
		lcli := c.Client(t, leader.ClientURL)
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		defer pcancel()
		if _, err := lcli.Put(pctx, "k", "with one member killed"); err != nil {
			t.Fatalf("put with one member killed: %v", err)
		}
		if err := m.Restart(); err != nil { // Stop of a stopped member is a no-op
			t.Fatal(err)
		}
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("restart template through the control command", func(t *testing.T) {
		m := c.Members[2]
		before := m.PID()
		n, ok := c.Spec.Node(m.Name)
		if !ok || n.Restart != c.ControlCommand("restart") {
			t.Fatalf("node %s restart template %q, want the control command", m.Name, n.Restart)
		}
		out, err := runTemplate(ctx, n.Restart, m.Name)
		if err != nil {
			t.Fatalf("restart command: %v\n%s", err, out)
		}
		if after := m.PID(); after == 0 || after == before {
			t.Fatalf("pid %d before the restart command, %d after: not a re-exec", before, after)
		}
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		put(t, "after a restart through the template")

		out, err = runTemplate(ctx, c.ControlCommand("restart"), "no-such-node")
		if err == nil || !strings.Contains(out, `no member "no-such-node"`) {
			t.Errorf("control command for an unknown node: %v, %q", err, out)
		}
	})

	t.Run("log spans restarts", func(t *testing.T) {
		var killed int
		for _, m := range c.Members {
			log := m.Log()
			if strings.Contains(log, "sending SIGKILL") && strings.Count(log, "=== etcdtest") >= 6 {
				killed++
			}
		}
		if killed != 1 {
			t.Errorf("%d member logs record a kill and a restart, want 1", killed)
		}
	})
}

// memberAdd adds m to etcd's membership. With strict-reconfig-check, as
// etcdpki configures it, etcd refuses a new voting member until every
// current member has been connected for five seconds ("unhealthy
// cluster"), which a member that just joined has not: retry, as an
// operator would.
func memberAdd(ctx context.Context, t *testing.T, cli *clientv3.Client, m *etcdtest.Member) *clientv3.MemberAddResponse {
	t.Helper()
	for {
		resp, err := cli.MemberAdd(ctx, []string{m.PeerURL})
		if err == nil {
			return resp
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || ctx.Err() != nil {
			t.Fatalf("member add %s: %v", m.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestStartRetriesTakenPort takes a member's client port before etcd can
// bind it, as a parallel test package might: Start must throw the attempt
// away and succeed with new ports, without waiting out its ready timeout.
func TestStartRetriesTakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", net.JoinHostPort(etcdtest.NodeIP(2), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	edits := 0
	start := time.Now()
	c := etcdtest.Start(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		edits++
		if edits == 1 {
			f.Nodes[1].ClientPort = taken
		}
	}})
	if edits != 2 {
		t.Errorf("spec written %d times, want 2 (one retry)", edits)
	}
	if got := c.File.Nodes[1].ClientPort; got == taken {
		t.Errorf("the retry kept the taken port %d", got)
	}
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("Start took %v: the failed attempt waited for its timeout", took)
	}
}

// checkHealth runs `etcdctl endpoint health --cluster` with a node's
// healthcheck certificate, as kubeadm's etcd probe does, and wants every
// one of n members healthy.
func checkHealth(ctx context.Context, t *testing.T, c *etcdtest.Cluster, n int) {
	t.Helper()
	crt, key := etcdtest.NodePair(c.Paths, c.Members[0].Name, "healthcheck-client")
	out, err := c.Etcdctl(ctx, crt, key, "endpoint", "health", "--cluster")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, "is healthy"); got != n {
		t.Errorf("etcdctl endpoint health --cluster: %d healthy, want %d:\n%s", got, n, out)
	}
	for _, m := range c.Members[:n] {
		if !strings.Contains(out, m.ClientURL+" is healthy") {
			t.Errorf("etcdctl does not report %s (%s) healthy:\n%s", m.Name, m.ClientURL, out)
		}
	}
}

// handshake connects to an https URL and returns the TLS error, reading
// once so that a TLS 1.3 server's verdict on the client certificate, which
// arrives after the client's side of the handshake, is seen.
func handshake(t *testing.T, rawURL string, cfg *tls.Config) error {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}

func tlsConfig(t *testing.T, caFile, crt, key string) *tls.Config {
	t.Helper()
	cfg, err := etcdtest.TLSConfig(caFile, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// foreignPKI issues a second PKI, with its own CA, for the same spec.
func foreignPKI(t *testing.T, f etcdtest.SpecFile) pki.Paths {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	f.PKIDir = dir
	f.Nodes = append([]etcdtest.SpecNode(nil), f.Nodes...)
	data, err := yaml.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Parse(data, "", cluster.Options{PKIDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	return pki.Paths{PKI: dir}
}

// serverOnlyCert signs, with the cluster's own CA, a certificate whose only
// extended key usage is serverAuth: valid, trusted, and not a client cert.
func serverOnlyCert(t *testing.T, p pki.Paths) (crtFile, keyFile string) {
	t.Helper()
	cert := testpki.LoadCA(t, p.CACert(), p.CAKey()).Leaf(t, testpki.LeafOptions{
		CN:  "kube-apiserver-etcd-client",
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return testpki.WritePair(t, t.TempDir(), "server-only", cert)
}

// replaceFile puts src's content at dst, replacing the symlink into the
// atomic store with a plain file: the test bypasses etcdpki on purpose.
func replaceFile(t *testing.T, dst, src string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dst); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dst, data, 0o600)
}

// runTemplate renders a restart template for a node as rotate would and
// runs it with sh -c.
func runTemplate(ctx context.Context, tmpl, node string) (string, error) {
	tp, err := template.New("restart").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tp.Execute(&b, cluster.TemplateData{Name: node}); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", b.String()).CombinedOutput()
	return string(out), err
}
