package testpki

import (
	"io"
	"net"
	"net/http"
	"sync"
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

// Hold is one connection a WatchedBlackHole accepted: when it was
// accepted, and when the client closed it (zero while it is open).
type Hold struct {
	Accepted, Closed time.Time
}

// WatchedBlackHole is a BlackHole that records each connection it
// accepted and when its client gave up on it (closed it), so a test can
// tell from the order of events, not from their durations, whether a
// client held two black holes at once (probed them concurrently) or one
// after the other. holds returns the connections so far, in accept order.
func WatchedBlackHole(t testing.TB) (addr string, holds func() []Hold) {
	t.Helper()
	l := listen(t)
	var mu sync.Mutex
	var got []*Hold
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h := &Hold{Accepted: time.Now()}
			mu.Lock()
			got, conns = append(got, h), append(conns, c)
			mu.Unlock()
			go func() {
				// Never answers; a read ends when the client closes.
				io.Copy(io.Discard, c)
				mu.Lock()
				h.Closed = time.Now()
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), func() []Hold {
		mu.Lock()
		defer mu.Unlock()
		out := make([]Hold, len(got))
		for i, h := range got {
			out[i] = *h
		}
		return out
	}
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
