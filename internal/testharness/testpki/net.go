package testpki

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// BlackHole listens on loopback, accepts TCP connections and never says a
// word, like a host whose etcd is wedged or a firewall that lets SYNs
// through. It returns the host:port; the listener and every connection
// it accepted are closed when the test ends.
func BlackHole(t testing.TB) string {
	t.Helper()
	l := listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// PlainHTTP serves plain HTTP (404 to everything) on loopback, like a
// wrong port or an etcd without TLS, until the test ends. It returns the
// host:port.
func PlainHTTP(t testing.TB) string {
	t.Helper()
	l := listen(t)
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// ClosedPort returns a loopback host:port that nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	l := listen(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
