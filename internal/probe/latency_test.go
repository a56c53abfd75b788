package probe

import (
	"net"
	"sync"
	"testing"
	"time"
)

// latencyProxy forwards loopback TCP to target, holding every chunk back
// by delay in each direction: a real network hop with WAN-like latency,
// so benchmarks can show what concurrency buys when the network, not the
// CPU, is the cost. It returns its https:// endpoint.
func latencyProxy(tb testing.TB, target string, delay time.Duration) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			wg.Go(func() { delayCopy(out, in, delay) })
			wg.Go(func() { delayCopy(in, out, delay) })
		}
	})
	return "https://" + l.Addr().String()
}

// delayCopy copies src to dst, each chunk delivered delay after it was
// read, preserving order; it closes both ends when src ends.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(delay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	// Drain so the reader goroutine never blocks on a full channel.
	for range ch {
	}
}
