package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

// BenchmarkHealth shows that probing a cluster costs about as much as its
// slowest endpoint, and that a black-holed endpoint costs one timeout, not
// one per endpoint. On loopback a probe is CPU work (TLS, and the etcd
// members share the machine), so three at once cost more than one on a
// small machine; behind 10ms of network latency they cost what one does.
// Compare the concurrent-ms and slowest-alone-ms metrics, and
// one-black-holed with the 1s timeout it runs under.
func BenchmarkHealth(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{})
	cfg := apiserverTLS(b, c)
	ctx := context.Background()
	eps := c.Endpoints()
	for i, ep := range eps {
		b.Run("single/"+etcdtest.NodeName(i+1), func(b *testing.B) {
			for b.Loop() {
				if r := Endpoint(ctx, ep, cfg, DefaultTimeout); !r.Healthy {
					b.Fatal(r.Err())
				}
			}
		})
	}
	// Interleaved, so both figures see the same machine load: a
	// concurrent run of all three, and each endpoint on its own.
	b.Run("three-vs-each-alone", func(b *testing.B) {
		var concurrent, slowest, sum time.Duration
		for b.Loop() {
			start := time.Now()
			if h := Health(ctx, eps, cfg, DefaultTimeout); !h.Healthy() {
				b.Fatal("unhealthy")
			}
			concurrent += time.Since(start)
			var worst time.Duration
			for _, ep := range eps {
				start := time.Now()
				Endpoint(ctx, ep, cfg, DefaultTimeout)
				d := time.Since(start)
				worst = max(worst, d)
				sum += d
			}
			slowest += worst
		}
		n := float64(b.N) * float64(time.Millisecond)
		b.ReportMetric(float64(concurrent)/n, "concurrent-ms")
		b.ReportMetric(float64(slowest)/n, "slowest-alone-ms")
		b.ReportMetric(float64(sum)/n, "sum-alone-ms")
	})
	// With 10ms each way between us and every member, as across a WAN or
	// a busy datacenter, the network dominates and a concurrent probe of
	// three costs what one costs.
	b.Run("three-vs-each-alone/latency=10ms", func(b *testing.B) {
		var slow []string
		for _, m := range c.Members {
			slow = append(slow, latencyProxy(b, hostPort(b, m.ClientURL), 10*time.Millisecond))
		}
		var concurrent, slowest time.Duration
		for b.Loop() {
			start := time.Now()
			if h := Health(ctx, slow, cfg, DefaultTimeout); !h.Healthy() {
				b.Fatalf("unhealthy through the proxy: %v", h.Endpoints[0].Err())
			}
			concurrent += time.Since(start)
			var worst time.Duration
			for _, ep := range slow {
				start := time.Now()
				Endpoint(ctx, ep, cfg, DefaultTimeout)
				worst = max(worst, time.Since(start))
			}
			slowest += worst
		}
		n := float64(b.N) * float64(time.Millisecond)
		b.ReportMetric(float64(concurrent)/n, "concurrent-ms")
		b.ReportMetric(float64(slowest)/n, "slowest-alone-ms")
	})
	b.Run("three-healthy", func(b *testing.B) {
		for b.Loop() {
			if h := Health(ctx, eps, cfg, DefaultTimeout); !h.Healthy() {
				b.Fatal("unhealthy")
			}
		}
	})
	b.Run("three-plus-one-black-holed/timeout=1s", func(b *testing.B) {
		hole := "https://" + testpki.BlackHole(b)
		all := append(append([]string{}, eps...), hole)
		for b.Loop() {
			start := time.Now()
			h := Health(ctx, all, cfg, time.Second)
			if h.Endpoints[3].Handshake == nil || h.Endpoints[3].Handshake.Kind != KindTimeout {
				b.Fatalf("black hole: %+v", h.Endpoints[3])
			}
			if took := time.Since(start); took > 2*time.Second {
				b.Fatalf("took %s: more than one timeout", took)
			}
		}
	})
}

// BenchmarkServingCertVerdict is what TestServingCertServerDropsOnData
// no longer asserts about time: a server that sends a session ticket
// (etcd's ports do) gives its verdict on our client certificate at once,
// so ServingCert returns in a handshake's time (goal: under confirmWait/2);
// one without tickets costs the quiet wait (goal: under confirmWait plus
// 500 ms).
//
//	go test -run '^$' -bench ServingCertVerdict -benchtime 20x ./internal/probe/
func BenchmarkServingCertVerdict(b *testing.B) {
	ca := testpki.NewCA(b, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	srv := ca.Leaf(b, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku})
	client := ca.Leaf(b, testpki.LeafOptions{CN: "etcd-1-peer-client", EKU: eku})
	for _, tc := range []struct {
		name      string
		version   uint16
		noTickets bool
	}{{"TLS1.2", tls.VersionTLS12, false}, {"TLS1.3", tls.VersionTLS13, false}, {"TLS1.3/no-tickets", tls.VersionTLS13, true}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveTLS(b, &tls.Config{
				Certificates: []tls.Certificate{srv},
				ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
				MaxVersion: tc.version, SessionTicketsDisabled: tc.noTickets,
			}, func(c *tls.Conn) {
				defer c.Close()
				if c.Handshake() == nil {
					c.SetReadDeadline(time.Now().Add(3 * time.Second))
					c.Read(make([]byte, 1))
				}
			})
			cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client}}
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := ServingCert(context.Background(), addr, cfg); err != nil {
					b.Fatal(err)
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Milliseconds()), "ms-worst")
		})
	}
}
