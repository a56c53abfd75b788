package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Verdict is what a member's port did with a certificate presented over a
// fresh handshake.
type Verdict struct {
	// Accepted is true when the port answered a request over the
	// connection; false when it closed it (or sent a TLS alert) instead.
	Accepted bool
	// How says what was seen: "answered HTTP/1.1 200", "closed after the
	// handshake", "alert: bad certificate".
	How string
}

// Present opens a fresh TLS connection to addr presenting pair and asks
// for /version. etcd checks its CRL after the handshake (or, on a gRPC-only
// listener, inside it) and closes a connection whose certificate's serial
// is revoked without reading from it, so the request is what tells
// refusal from acceptance: an answer is acceptance, a close or an alert
// is refusal. /version is served on both the client and the peer port. An
// error is neither: the port could not be reached or did not say.
func Present(ctx context.Context, addr string, roots *x509.CertPool, pair tls.Certificate, timeout time.Duration) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Verdict{}, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := ClientConfig(roots, &pair)
	cfg.ServerName = host
	// No session cache: every handshake presents the certificate afresh.
	cfg.ClientSessionCache = nil
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if v, ok := refusal(err); ok {
			return v, nil
		}
		return Verdict{}, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if _, err := fmt.Fprintf(tc, "GET /version HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		if v, ok := refusal(err); ok {
			return v, nil
		}
		return Verdict{}, fmt.Errorf("write to %s: %w", addr, err)
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if strings.HasPrefix(line, "HTTP/") {
		return Verdict{Accepted: true, How: "answered " + strings.TrimSpace(line)}, nil
	}
	if err == nil {
		return Verdict{}, fmt.Errorf("%s answered %q, not HTTP", addr, strings.TrimSpace(line))
	}
	if v, ok := refusal(err); ok {
		return v, nil
	}
	return Verdict{}, fmt.Errorf("read from %s: %w", addr, err)
}

// refusal classifies an error as the server refusing the connection: it
// closed it (EOF, reset) or sent a TLS alert about our certificate.
func refusal(err error) (Verdict, bool) {
	var alert tls.AlertError
	var netErr net.Error
	switch {
	case errors.As(err, &alert):
		return Verdict{How: "alert: " + alert.Error()}, true
	case errors.As(err, &netErr) && netErr.Timeout():
		return Verdict{}, false
	case strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "connection reset"),
		strings.Contains(err.Error(), "broken pipe"), strings.Contains(err.Error(), "bad certificate"),
		strings.Contains(err.Error(), "certificate revoked"):
		return Verdict{How: "closed after the handshake"}, true
	}
	return Verdict{}, false
}
