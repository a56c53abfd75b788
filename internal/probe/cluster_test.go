package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

func apiserverTLS(t testing.TB, c *etcdtest.Cluster) *tls.Config {
	t.Helper()
	_, crt, key := etcdtest.APIServerFiles(c.Paths)
	cfg, err := TLSConfig(etcdtest.APIServerCA(c.Paths), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// LoadCertPoolOrFail reads a CA file into a pool.
func LoadCertPoolOrFail(t testing.TB, caFile string) *x509.CertPool {
	t.Helper()
	pool, err := LoadCertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func hostPort(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

func TestHealthRealCluster(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	cfg := apiserverTLS(t, c)
	ctx := context.Background()

	h := Health(ctx, c.Endpoints(), cfg, 5*time.Second)
	if !h.Healthy() {
		t.Fatalf("cluster not healthy: %+v", h)
	}
	if len(h.Members) != 3 || !h.MembersAgree || h.ClusterID == 0 || !h.Quorum {
		t.Errorf("cluster view %+v", h)
	}
	l, ok := h.LeaderResult()
	if !ok {
		t.Fatalf("leader %s not among the results", h.Leader)
	}
	for _, r := range h.Endpoints {
		if r.Status == nil || r.Status.Leader != h.Leader {
			t.Errorf("%s does not report leader %s: %+v", r.Endpoint, h.Leader, r.Status)
		}
	}
	if !slices.ContainsFunc(h.Members, func(m Member) bool { return m.ID == h.Leader }) {
		t.Errorf("leader %s is not in the member list %+v", h.Leader, h.Members)
	}
	want, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Endpoint != want.ClientURL {
		t.Errorf("leader endpoint %s, harness says %s", l.Endpoint, want.ClientURL)
	}
	for _, r := range h.Endpoints {
		if !h.CaughtUp(r.Status.MemberID, 10) {
			t.Errorf("member %s not caught up on an idle cluster", r.Status.MemberID)
		}
		if r.ServerCert == nil || len(r.Members) != 3 || r.Status.Version == "" {
			t.Errorf("result %+v", r)
		}
	}

	t.Run("serving certs on the client and peer ports", func(t *testing.T) {
		m := c.Members[1]
		crt, key := etcdtest.NodePair(c.Paths, m.Name, "peer")
		// The peer port demands a client cert: the node's own peer pair
		// has clientAuth, as rotate will use it.
		peerCfg, err := TLSConfig(c.Paths.CACert(), crt, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ServingCert(ctx, hostPort(t, m.PeerURL), peerCfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := testpki.ReadCert(t, crt); got.SerialNumber.Cmp(want.SerialNumber) != 0 {
			t.Errorf("peer port serves serial %x, peer.crt has %x", got.SerialNumber, want.SerialNumber)
		}
		srvCrt, _ := etcdtest.NodePair(c.Paths, m.Name, "server")
		got, err = ServingCert(ctx, hostPort(t, m.ClientURL), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := testpki.ReadCert(t, srvCrt); got.SerialNumber.Cmp(want.SerialNumber) != 0 {
			t.Errorf("client port serves serial %x, server.crt has %x", got.SerialNumber, want.SerialNumber)
		}
	})

	// rotate proves that a member's new peer certificate would be
	// accepted when the member dials its peers by presenting it to
	// another member's peer port. etcd checks a peer certificate's IP
	// SANs against the connection's source address after the handshake
	// and closes the connection when none matches; from the rotating
	// host the completed handshake (Dial's verdict, from the server's
	// session ticket) is therefore the proof.
	t.Run("peer port verdict on a client certificate", func(t *testing.T) {
		peerAddr := hostPort(t, c.Members[0].PeerURL)
		pool := LoadCertPoolOrFail(t, c.Paths.CACert())
		both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		etcdCA := testpki.LoadCA(t, c.Paths.CACert(), c.Paths.CAKey())
		// Signed by the cluster's CA, but naming an address we do not
		// dial from: accepted by the handshake, then cut by etcd.
		elsewhere := etcdCA.Leaf(t, testpki.LeafOptions{CN: "etcd-9", Hosts: []string{"127.0.0.9"}, EKU: both})
		conn, _, err := Dial(ctx, peerAddr, ClientConfig(pool, &elsewhere))
		if err != nil {
			t.Fatalf("a peer certificate from the cluster's CA was refused: %v", err)
		}
		if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Logf("negotiated TLS version %x: the verdict came inside the handshake", v)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		var b [1]byte
		_, rerr := conn.Read(b[:])
		conn.Close()
		if ne, ok := errors.AsType[net.Error](rerr); ok && ne.Timeout() {
			t.Errorf("etcd kept a peer connection whose certificate does not name its source address open")
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.Members[0].WaitLog(wctx, "rejected connection"); err != nil {
			t.Errorf("etcd did not say why it closed the connection: %v", err)
		}
		// A peer certificate from another CA: refused, and Dial says so.
		rogue := testpki.NewCA(t, "rogue").Leaf(t, testpki.LeafOptions{CN: "etcd-9", Hosts: []string{"127.0.0.1"}, EKU: both})
		_, stage, err := Dial(ctx, peerAddr, ClientConfig(pool, &rogue))
		if pe, ok := errors.AsType[*Error](err); !ok || stage != StageHandshake || pe.Kind != KindClientCertRejected {
			t.Errorf("rogue peer certificate: stage %q, %v; want a client-cert-rejected handshake error", stage, err)
		}
	})

	t.Run("black-holed endpoint costs one timeout", func(t *testing.T) {
		// Two black holes cost one timeout when Health holds both at
		// once: each is accepted before the other is given up. That is an
		// order of events, which a busy machine does not change; the
		// time it costs is BenchmarkHealth's three-plus-one-black-holed.
		hole1, holds1 := testpki.WatchedBlackHole(t)
		hole2, holds2 := testpki.WatchedBlackHole(t)
		eps := append(c.Endpoints(), "https://"+hole1, "https://"+hole2)
		start := time.Now()
		h := Health(ctx, eps, cfg, time.Second)
		t.Logf("Health took %s with two black holes and a 1s timeout", time.Since(start))
		if a, b := holds1(), holds2(); len(a) != 1 || len(b) != 1 {
			t.Errorf("black holes saw %d and %d connections, want 1 each", len(a), len(b))
		} else {
			waitClosed(t, holds1, holds2)
			a, b = holds1(), holds2()
			if !a[0].Accepted.Before(b[0].Closed) || !b[0].Accepted.Before(a[0].Closed) {
				t.Errorf("the black holes were held one after the other (%+v, %+v): two timeouts, not one", a[0], b[0])
			}
		}
		if h.Healthy() {
			t.Error("healthy with black holes")
		}
		for _, r := range h.Endpoints[3:] {
			if r.Handshake == nil || r.Handshake.Kind != KindTimeout {
				t.Errorf("black hole %s: %+v", r.Endpoint, r.Handshake)
			}
		}
		if h.Leader == 0 || !h.Quorum {
			t.Errorf("the real members still agree on a leader: %+v", h)
		}
	})

	t.Run("stopped member", func(t *testing.T) {
		m := c.Members[2]
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Start() })
		h := Health(ctx, c.Endpoints(), cfg, 2*time.Second)
		r := h.Endpoints[2]
		if r.Healthy || r.Connect == nil || r.Connect.Kind != KindRefused {
			t.Errorf("stopped member: %+v", r.Connect)
		}
		if h.Healthy() || !h.Quorum || h.Leader == 0 {
			t.Errorf("two of three up: healthy=%v quorum=%v leader=%s", h.Healthy(), h.Quorum, h.Leader)
		}
	})
}

// waitClosed waits until every connection the black holes accepted is
// closed by its client (the client gives up on a black hole at its
// timeout, and the black hole notices a moment later).
func waitClosed(t *testing.T, holds ...func() []testpki.Hold) {
	t.Helper()
	open := func() bool {
		for _, h := range holds {
			for _, x := range h() {
				if x.Closed.IsZero() {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); open(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a black-holed connection was never closed by its client")
		}
	}
}
