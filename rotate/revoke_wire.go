package rotate

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/internal/probe"
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
func Present(ctx context.Context, addr string, roots *x509.CertPool, pair tls.Certificate) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
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
	cfg := probe.ClientConfig(roots, &pair)
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

// PortVerdict is one port's verdict on a revoked certificate, with the
// control: a certificate from the same CA with a serial that is not
// revoked, presented over a fresh handshake at the same moment, which the
// port must accept, so that the refusal is the CRL's and not a port that
// refuses everyone.
type PortVerdict struct {
	Member  string
	Port    string // "client 127.0.0.1:2379" or "peer 127.0.0.1:2380"
	Revoked Verdict
	Control Verdict
	Err     error
}

// refusedEverywhere presents revoked and control on every member's client
// and peer port, all at once.
func refusedEverywhere(ctx context.Context, ports []memberPort, roots *x509.CertPool, revoked, control tls.Certificate) []PortVerdict {
	out := make([]PortVerdict, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		out[i] = PortVerdict{Member: p.member, Port: p.kind + " " + p.addr}
		wg.Go(func() {
			var cerr error
			var inner sync.WaitGroup
			inner.Go(func() { out[i].Control, cerr = Present(ctx, p.addr, roots, control) })
			v, err := Present(ctx, p.addr, roots, revoked)
			inner.Wait()
			out[i].Revoked = v
			out[i].Err = errors.Join(err, cerr)
		})
	}
	wg.Wait()
	return out
}

// memberPort is one listening port of a member.
type memberPort struct {
	member, kind, addr string
}

// ports lists every member's client and peer port, in spec order.
func (c *etcdCluster) ports() ([]memberPort, error) {
	var out []memberPort
	for _, n := range c.spec.Nodes {
		_, caddr, err := probe.ParseEndpoint(n.ClientURLs[0])
		if err != nil {
			return nil, err
		}
		_, paddr, err := probe.ParseEndpoint(n.PeerURLs[0])
		if err != nil {
			return nil, err
		}
		out = append(out, memberPort{n.Name, "client", caddr}, memberPort{n.Name, "peer", paddr})
	}
	return out, nil
}

// verdictProblem is why a port's verdict is not a proof of refusal, "" if
// it is one.
func verdictProblem(v PortVerdict) string {
	switch {
	case v.Err != nil:
		return v.Err.Error()
	case !v.Control.Accepted:
		return "it refused the control certificate too (" + v.Control.How + "): the refusal cannot be told from a port that refuses everyone"
	case v.Revoked.Accepted:
		return "it accepted the revoked certificate (" + v.Revoked.How + "): the member does not enforce the CRL; " +
			"etcd reads a CRL only from --client-crl-file/--peer-crl-file or ETCD_CLIENT_CRL_FILE/ETCD_PEER_CRL_FILE, never from --config-file: start it from etcd.env"
	}
	return ""
}

// waitRefused presents the certificates until every port refuses the
// revoked one and accepts the control, or until timeout: a deploy command
// that copies the CRL asynchronously gets a moment. It returns the last
// verdicts and how long it took.
func waitRefused(ctx context.Context, ports []memberPort, roots *x509.CertPool, revoked, control tls.Certificate, timeout time.Duration) ([]PortVerdict, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		vs := refusedEverywhere(ctx, ports, roots, revoked, control)
		var bad []string
		for _, v := range vs {
			if p := verdictProblem(v); p != "" {
				bad = append(bad, fmt.Sprintf("%s %s: %s", v.Member, v.Port, p))
			}
		}
		if len(bad) == 0 {
			return vs, time.Since(start), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return vs, time.Since(start), errors.New(strings.Join(bad, "; "))
		}
		time.Sleep(pollInterval / 4)
	}
}
