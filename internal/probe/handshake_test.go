package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

// tlsServer serves TLS on a loopback port with the given certificate,
// requiring client certs from clientCA, and answers one byte to anyone it
// accepts. It returns the address.
func tlsServer(t *testing.T, cert tls.Certificate, clientCA *testpki.CA, maxVersion uint16) string {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
		MaxVersion:   maxVersion,
	}
	return serveTLS(t, cfg, func(c *tls.Conn) {
		defer c.Close()
		if err := c.Handshake(); err != nil {
			return
		}
		c.Write([]byte{0})
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 64))
	})
}

// serveTLS accepts TLS connections on a loopback port with cfg until the
// test ends and hands each to handle in a goroutine of its own. It returns
// the address.
func serveTLS(t testing.TB, cfg *tls.Config, handle func(*tls.Conn)) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c.(*tls.Conn))
		}
	}()
	return l.Addr().String()
}

func TestDialClassifies(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	other := testpki.NewCA(t, "other-ca")
	serverEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	clientEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	good := ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1", "localhost"}, EKU: serverEKU})
	client := ca.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU})

	for _, v := range []struct {
		name string
		ver  uint16
	}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}} {
		tests := []struct {
			name     string
			addr     func(t *testing.T) string
			client   tls.Certificate
			wantKind Kind
			wantMsg  []string
		}{
			{name: "ok", addr: func(t *testing.T) string { return tlsServer(t, good, ca, v.ver) }, client: client},
			{
				name: "server cert from another CA",
				addr: func(t *testing.T) string {
					return tlsServer(t, other.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: serverEKU}), ca, v.ver)
				},
				client:   client,
				wantKind: KindUnknownCA, wantMsg: []string{"other-ca", "not signed by the given CA"},
			},
			{
				name: "server cert without the IP",
				addr: func(t *testing.T) string {
					return tlsServer(t, ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"10.9.9.9", "etcd-1.example"}, EKU: serverEKU}), ca, v.ver)
				},
				client:   client,
				wantKind: KindSANMismatch, wantMsg: []string{`"127.0.0.1"`, "10.9.9.9", "etcd-1.example"},
			},
			{
				name: "server cert expired",
				addr: func(t *testing.T) string {
					return tlsServer(t, ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: serverEKU, NotAfter: time.Now().Add(-time.Minute)}), ca, v.ver)
				},
				client:   client,
				wantKind: KindServerCertExpired, wantMsg: []string{"expired at"},
			},
			{
				name:     "client cert from another CA",
				addr:     func(t *testing.T) string { return tlsServer(t, good, ca, v.ver) },
				client:   other.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU}),
				wantKind: KindClientCertRejected, wantMsg: []string{"rejected the client certificate", "unknown certificate authority"},
			},
			{
				name:     "client cert without clientAuth",
				addr:     func(t *testing.T) string { return tlsServer(t, good, ca, v.ver) },
				client:   ca.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}),
				wantKind: KindClientCertRejected, wantMsg: []string{"rejected the client certificate", "no clientAuth"},
			},
			{
				name:     "client cert expired",
				addr:     func(t *testing.T) string { return tlsServer(t, good, ca, v.ver) },
				client:   ca.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU, NotAfter: time.Now().Add(-time.Minute)}),
				wantKind: KindClientCertRejected, wantMsg: []string{"expired certificate"},
			},
			{name: "plain HTTP", addr: func(t *testing.T) string { return testpki.PlainHTTP(t) }, client: client, wantKind: KindNotTLS, wantMsg: []string{"plain HTTP"}},
			{name: "black hole", addr: func(t *testing.T) string { return testpki.BlackHole(t) }, client: client, wantKind: KindTimeout, wantMsg: []string{"accepted TCP but gave no TLS answer"}},
			{name: "refused", addr: func(t *testing.T) string { return testpki.ClosedPort(t) }, client: client, wantKind: KindRefused, wantMsg: []string{"connection refused"}},
		}
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				addr := tc.addr(t)
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{tc.client}}
				c, err := dialReturns(t, ctx, addr, cfg)
				if tc.wantKind == "" {
					if err != nil {
						t.Fatalf("Dial: %v", err)
					}
					defer c.Close()
					if c.Leaf.Subject.CommonName != "etcd-1" {
						t.Errorf("leaf CN %q", c.Leaf.Subject.CommonName)
					}
					return
				}
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Dial error %v (%T), want *probe.Error", err, err)
				}
				t.Log(pe)
				if pe.Kind != tc.wantKind {
					t.Errorf("kind %s, want %s (%v)", pe.Kind, tc.wantKind, pe)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(pe.Error(), m) {
						t.Errorf("message %q does not mention %q", pe.Error(), m)
					}
				}
			})
		}
	}
}

func TestServingCert(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	srv := ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku})
	addr := tlsServer(t, srv, ca, 0)
	// A node's peer cert has both usages, so it works as the client cert
	// on the peer port too.
	cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{CN: "etcd-2", EKU: eku})}}
	got, err := ServingCert(context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(srv.Leaf.SerialNumber) != 0 {
		t.Errorf("serial %s, want %s", got.SerialNumber, srv.Leaf.SerialNumber)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "etcd-ca")
	caFile := ca.WriteCert(t, dir, "etcd-ca")
	crt, key := testpki.WritePair(t, dir, "client", ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	_, otherKey := testpki.WritePair(t, dir, "other", ca.Leaf(t, testpki.LeafOptions{CN: "o"}))
	tests := []struct {
		name           string
		ca, cert, key  string
		want           error
		wantPathInText string
	}{
		{"ok", caFile, crt, key, nil, ""},
		{"ok without client cert", caFile, "", "", nil, ""},
		{"no CA", "", crt, key, ErrNoCA, ""},
		{"missing CA file", dir + "/nope.crt", crt, key, errNotExist, "nope.crt"},
		{"CA file is a key", key, crt, key, ErrNoCertificates, key},
		{"cert without key", caFile, crt, "", ErrPairIncomplete, crt},
		{"key without cert", caFile, "", key, ErrPairIncomplete, key},
		{"key of another cert", caFile, crt, otherKey, ErrKeyMismatch, otherKey},
		{"missing key", caFile, crt, dir + "/gone.key", errNotExist, "gone.key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := TLSConfig(tc.ca, tc.cert, tc.key)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 {
					t.Errorf("config %+v", cfg)
				}
				return
			}
			var ie *FileError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T), want *FileError", err, err)
			}
			if tc.want != errNotExist && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if tc.want == errNotExist && !strings.Contains(err.Error(), "no such file") {
				t.Errorf("error %v does not say the file is missing", err)
			}
			if !strings.Contains(err.Error(), tc.wantPathInText) {
				t.Errorf("error %v does not name %s", err, tc.wantPathInText)
			}
		})
	}
}

var errNotExist = errors.New("not exist")

// A config that picks its client cert per handshake (as clients that
// follow rotation do) gets the same TLS 1.3 rejection check.
func TestDialGetClientCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	addr := tlsServer(t, ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku}), ca, tls.VersionTLS13)
	rogue := testpki.NewCA(t, "rogue").Leaf(t, testpki.LeafOptions{CN: "c", EKU: eku})
	cfg := &tls.Config{RootCAs: ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue, nil }}
	_, _, err := Dial(context.Background(), addr, cfg)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindClientCertRejected {
		t.Fatalf("error %v, want client-cert-rejected", err)
	}
}

// dialReturns runs Dial and waits for it to return. A Dial bounded by
// its context returns soon after the context ends; one that is not hangs
// on a black hole for as long as the black hole lasts. The watchdog
// tells the two apart without measuring how soon: 30 s after a 500 ms
// context is a hang on any machine, however busy. (What a Dial costs is
// BenchmarkHealth's.)
func dialReturns(t *testing.T, ctx context.Context, addr string, cfg *tls.Config) (*Conn, error) {
	t.Helper()
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		c, _, err := Dial(ctx, addr, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		t.Logf("Dial returned after %s", time.Since(start).Round(time.Millisecond))
		return r.c, r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Dial has not returned 30s after it started: not bounded by its context")
		return nil, nil
	}
}

// A TLS server that takes our certificate and then says nothing is not a
// failure of the handshake: Dial ends by itself (after confirmWait)
// while the server still holds the connection.
func TestDialQuietServer(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	quiet := make(chan struct{})
	t.Cleanup(func() { close(quiet) })
	addr := serveTLS(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{CN: "quiet", Hosts: []string{"127.0.0.1"}, EKU: eku})},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
	}, func(c *tls.Conn) {
		// Quiet until the test ends: a Dial that waited for the server
		// would not return before the watchdog.
		c.Handshake()
		<-quiet
		c.Close()
	})
	cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: eku})}}
	c, err := dialReturns(t, context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// rotate compares serials with ServingCert after a swap: a session cache
// in the caller's config must not make it report the old certificate.
func TestServingCertNeverResumes(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	certs := []tls.Certificate{
		ca.Leaf(t, testpki.LeafOptions{CN: "old", Hosts: []string{"127.0.0.1"}, EKU: eku}),
		ca.Leaf(t, testpki.LeafOptions{CN: "new", Hosts: []string{"127.0.0.1"}, EKU: eku}),
	}
	var current atomic.Int32
	addr := serveTLS(t, &tls.Config{
		// Like etcd: the pair is looked up again at every handshake.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &certs[current.Load()], nil },
		ClientAuth:     tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
	}, func(c *tls.Conn) {
		defer c.Close()
		if c.Handshake() == nil {
			c.Write([]byte{0})
			c.Read(make([]byte, 64))
		}
	})
	cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: eku})},
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	for i, want := range []string{"old", "new"} {
		current.Store(int32(i))
		got, err := ServingCert(context.Background(), addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject.CommonName != want {
			t.Errorf("serving cert %q, want %q", got.Subject.CommonName, want)
		}
	}
}

// etcd 3.4's peer port, once TLS is done, hands an HTTP/2 preface to a
// gRPC server that expects a second TLS handshake, and so drops the
// connection. Dial must write nothing an application could misroute: the
// server's verdict on the client certificate is read, not provoked. The
// server here requires a client certificate, records the one it got, and
// drops the connection at the first byte it reads, under TLS 1.2 and 1.3,
// with and without session tickets.
func TestServingCertServerDropsOnData(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	srv := ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku})
	client := ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1-peer-client", EKU: eku})
	// How long each takes (the verdict read at once, or the quiet wait of
	// a server without tickets) is BenchmarkServingCertVerdict's.
	for _, tc := range []struct {
		name       string
		version    uint16
		noTickets  bool
		byCallback bool
	}{
		{"TLS1.2", tls.VersionTLS12, false, false},
		{"TLS1.2/GetClientCertificate", tls.VersionTLS12, false, true},
		{"TLS1.3", tls.VersionTLS13, false, false},
		{"TLS1.3/GetClientCertificate", tls.VersionTLS13, false, true},
		// A server without tickets costs the quiet wait, and passes.
		{"TLS1.3/no-tickets", tls.VersionTLS13, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			wrote := make(chan int, 1)
			addr := serveTLS(t, &tls.Config{
				Certificates: []tls.Certificate{srv},
				ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
				MaxVersion: tc.version, SessionTicketsDisabled: tc.noTickets,
				NextProtos: []string{"h2", "http/1.1"},
			}, func(c *tls.Conn) {
				defer c.Close()
				if err := c.Handshake(); err != nil {
					got <- "handshake: " + err.Error()
					return
				}
				if pc := c.ConnectionState().PeerCertificates; len(pc) > 0 {
					got <- pc[0].Subject.CommonName
				} else {
					got <- "no client certificate"
				}
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, _ := c.Read(make([]byte, 1)) // any byte: drop the connection
				wrote <- n
			})
			cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
			if tc.byCallback {
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client, nil }
			} else {
				cfg.Certificates = []tls.Certificate{client}
			}
			start := time.Now()
			cert, err := ServingCert(context.Background(), addr, cfg)
			t.Logf("ServingCert took %s", time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Fatalf("ServingCert: %v", err)
			}
			if cert.Subject.CommonName != "etcd-1" {
				t.Errorf("serving cert %q", cert.Subject.CommonName)
			}
			select {
			case cn := <-got:
				if cn != "etcd-1-peer-client" {
					t.Errorf("server got %q, want our client certificate", cn)
				}
			case <-time.After(30 * time.Second):
				t.Error("server never finished the handshake")
			}
			// The connection ends (our close, or the server's 3 s read
			// deadline) with no byte of ours read: nothing to misroute.
			select {
			case n := <-wrote:
				if n > 0 {
					t.Errorf("ServingCert wrote %d byte(s) of application data after the handshake", n)
				}
			case <-time.After(30 * time.Second):
				t.Error("the server's read never ended")
			}
		})
	}
}

// legacyAlertServer refuses client certificates the way a server built
// with Go before 1.21 (etcd 3.4) does: with a "bad certificate" alert,
// whatever the reason.
func legacyAlertServer(t *testing.T, cert tls.Certificate, clientCA *testpki.CA, maxVersion uint16) string {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		// crypto/tls answers any VerifyPeerCertificate error with "bad
		// certificate", also for a missing certificate.
		ClientAuth: tls.RequestClientCert,
		MaxVersion: maxVersion,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("tls: client didn't provide a certificate")
			}
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = c.Verify(x509.VerifyOptions{Roots: clientCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			return err
		},
	}
	return serveTLS(t, cfg, func(c *tls.Conn) {
		defer c.Close()
		if c.Handshake() == nil {
			c.Write([]byte{0})
		}
	})
}

// Against a server that says "bad certificate" for every refusal, the
// reason comes from what we sent.
func TestDialClassifiesLegacyAlerts(t *testing.T) {
	ca := testpki.NewCA(t, "etcd-ca")
	other := testpki.NewCA(t, "other-ca")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	clientEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	srv := ca.Leaf(t, testpki.LeafOptions{CN: "etcd-1", Hosts: []string{"127.0.0.1"}, EKU: eku})
	for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		addr := legacyAlertServer(t, srv, ca, ver)
		for _, tc := range []struct {
			name    string
			client  *tls.Certificate
			wantMsg []string // empty: accepted
		}{
			{"ok", new(ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: clientEKU})), nil},
			{"no client cert", nil, []string{"rejected the client certificate", "none was sent", "bad certificate"}},
			{"client cert from another CA", new(other.Leaf(t, testpki.LeafOptions{CN: "c", EKU: clientEKU})),
				[]string{"rejected the client certificate", "not signed by a CA the server trusts", "bad certificate"}},
			{"client cert expired", new(ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: clientEKU, NotAfter: time.Now().Add(-time.Minute)})),
				[]string{"rejected the client certificate", "expired at", "bad certificate"}},
			{"client cert without clientAuth", new(ca.Leaf(t, testpki.LeafOptions{CN: "c", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})),
				[]string{"rejected the client certificate", "no clientAuth", "bad certificate"}},
		} {
			t.Run(tls.VersionName(ver)+"/"+tc.name, func(t *testing.T) {
				cfg := &tls.Config{RootCAs: ca.Pool()}
				if tc.client != nil {
					cfg.Certificates = []tls.Certificate{*tc.client}
				} else {
					// No certificate of our own: the callback answers the
					// request with none, as a misconfigured client would.
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
				}
				c, _, err := Dial(context.Background(), addr, cfg)
				if tc.wantMsg == nil {
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
					return
				}
				pe, ok := errors.AsType[*Error](err)
				if !ok || pe.Kind != KindClientCertRejected {
					t.Fatalf("error %v, want %s", err, KindClientCertRejected)
				}
				for _, w := range tc.wantMsg {
					if !strings.Contains(pe.Msg, w) {
						t.Errorf("message %q does not mention %q", pe.Msg, w)
					}
				}
			})
		}
	}
}
