package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
)

// Kind classifies a probe failure so that a program can act on it and a
// person can be told what to fix.
type Kind string

// Failure kinds, from the network up to etcd.
const (
	KindBadEndpoint           Kind = "bad-endpoint"
	KindRefused               Kind = "connection-refused"
	KindUnreachable           Kind = "unreachable"
	KindTimeout               Kind = "timeout"
	KindNotTLS                Kind = "not-tls"
	KindUnknownCA             Kind = "unknown-ca"
	KindSANMismatch           Kind = "san-mismatch"
	KindServerCertExpired     Kind = "server-cert-expired"
	KindServerCertNotYetValid Kind = "server-cert-not-yet-valid"
	KindServerCertInvalid     Kind = "server-cert-invalid"
	KindClientCertRejected    Kind = "client-cert-rejected"
	KindHandshake             Kind = "handshake"
	KindNotEtcd               Kind = "not-etcd"
	KindRPC                   Kind = "rpc"
	KindAlarm                 Kind = "alarm"
)

// Error is one failed probe step: a Kind to switch on and a one-line
// message that says what was seen and what it means.
type Error struct {
	Kind Kind   `json:"kind"`
	Msg  string `json:"message"`
	Err  error  `json:"-"`
}

// Error returns the one-line message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying network, TLS or gRPC error.
func (e *Error) Unwrap() error { return e.Err }

func newError(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: err}
}

// CertInfo is the part of a certificate an operator needs to recognise it.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	SANs      []string  `json:"sans,omitempty"`
}

// NewCertInfo summarises c.
func NewCertInfo(c *x509.Certificate) *CertInfo {
	return &CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		Serial:    certx.Serial(c),
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
		SANs:      certx.SANs(c),
	}
}

// Conn is an established, verified TLS connection and how long each step
// took.
type Conn struct {
	*tls.Conn
	// Leaf is the server's certificate.
	Leaf *x509.Certificate
	// ConnectTook and HandshakeTook time the TCP connect and the TLS
	// handshake (including the check that the client cert was accepted).
	ConnectTook, HandshakeTook time.Duration
}

// Stage names the step at which Dial failed.
type Stage string

// Dial stages.
const (
	StageConnect   Stage = "connect"
	StageHandshake Stage = "handshake"
)

// Dial opens a TCP connection to addr (host:port), completes a TLS
// handshake with cfg, and makes sure the server accepted the client
// certificate. On failure it returns the stage that failed and an *Error
// whose Kind says why. cfg is not modified; its ServerName is set to addr's
// host, as gRPC does, so SAN checks match what etcd clients see. With
// TolerateExpired an expired server certificate is accepted (and
// reported).
func Dial(ctx context.Context, addr string, cfg *tls.Config, opts ...Option) (*Conn, Stage, error) {
	if cfg == nil {
		// Never fall back to a default config: that would trust the
		// system roots and send no client certificate.
		return nil, StageConnect, newError(KindBadEndpoint, nil, "no TLS configuration for %s", addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, StageConnect, newError(KindBadEndpoint, err, "%q is not host:port: %v", addr, err)
	}
	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, StageConnect, classifyConnect(ctx, addr, err)
	}
	c := &Conn{ConnectTook: time.Since(start)}
	start = time.Now()
	cfg = tolerate(optionsOf(opts), cfg, addr).Clone()
	cfg.ServerName = host
	// A resumed session reports the certificate of the session it
	// resumes, which may have been replaced since: rotate compares serials
	// with this. Fill the caller's cache, never read it; the session
	// ticket's arrival also tells confirmAccepted that the server took our
	// certificate.
	tickets := &ticketWatch{ClientSessionCache: cfg.ClientSessionCache}
	cfg.ClientSessionCache = tickets
	// Offer h2 as gRPC does: a gRPC server may refuse a client without it.
	cfg.NextProtos = []string{"h2"}
	// Note what we send, so that a server's generic "bad certificate" can
	// be explained from our side.
	var sent sentCert
	switch get := cfg.GetClientCertificate; {
	case get != nil:
		cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := get(cri)
			sent.record(c)
			return c, err
		}
	case len(cfg.Certificates) > 0:
		own := cfg.Certificates[0]
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			// crypto/tls would quietly send no certificate when ours is not
			// from a CA the server lists, and the server would only say
			// "handshake failure"; send it anyway so the server says why.
			sent.record(&own)
			return &own, nil
		}
	}
	tc := tls.Client(raw, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil && (len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil) {
		err = confirmAccepted(ctx, tc, tickets)
	}
	if err != nil {
		tc.Close()
		return nil, StageHandshake, classifyHandshake(ctx, addr, host, err, &sent)
	}
	c.Conn = tc
	c.Leaf = tc.ConnectionState().PeerCertificates[0]
	c.HandshakeTook = time.Since(start)
	return c, "", nil
}

// confirmAccepted waits for the server's verdict on our certificate. In
// TLS 1.3 the client's handshake completes before the server has checked
// the client certificate, so a rejection only arrives as an alert on the
// first read; without this, a rejected client cert would look like success
// until the first RPC failed with a vaguer message.
//
// Acceptance is the first session ticket: a server that asked for a client
// certificate sends its tickets only once it has verified it (Go's
// crypto/tls, and so every etcd, does), with no application data needed.
// Nothing is written: bytes of an application protocol could be routed
// anywhere (etcd 3.4's peer port hands an HTTP/2 preface to a gRPC server
// that expects a second TLS handshake and drops the connection).
// Application data from the server also counts as acceptance; silence for
// confirmWait counts too, for servers that send no tickets, since a
// rejection would have come at once.
func confirmAccepted(ctx context.Context, tc *tls.Conn, tickets *ticketWatch) error {
	if tc.ConnectionState().Version < tls.VersionTLS13 {
		return nil // TLS 1.2 checks the client cert inside the handshake
	}
	tickets.conn.Store(tc)
	dl := time.Now().Add(confirmWait)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	tc.SetReadDeadline(dl)
	defer tc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { tc.SetReadDeadline(time.Now()) })
	defer stop()
	var b [1]byte
	_, err := tc.Read(b[:])
	if tickets.seen.Load() {
		// The ticket came first: accepted, whatever the server did next
		// (ticketWatch cut the read short, or it closed the connection).
		return nil
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && ctx.Err() == nil {
		// No alert within confirmWait: a rejection would have come at
		// once, so the server took the certificate and is just quiet.
		return nil
	}
	return err
}

// confirmWait bounds the wait for a TLS 1.3 verdict from a server that
// sends no session tickets; a rejection alert comes right after the server
// reads our Finished message: one round trip.
const confirmWait = time.Second

// ticketWatch is the session cache Dial hands crypto/tls. It never offers
// a session to resume, passes tickets on to the caller's cache if there is
// one, and notes that a ticket arrived, cutting short the read in
// confirmAccepted that is waiting for the verdict.
type ticketWatch struct {
	tls.ClientSessionCache                          // the caller's; may be nil
	conn                   atomic.Pointer[tls.Conn] // set while confirmAccepted reads
	seen                   atomic.Bool
}

// Get never finds a session.
func (*ticketWatch) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

// Put is called by crypto/tls, inside a Read, for each ticket received.
func (w *ticketWatch) Put(key string, s *tls.ClientSessionState) {
	if w.ClientSessionCache != nil {
		w.ClientSessionCache.Put(key, s)
	}
	if tc := w.conn.Load(); tc != nil && s != nil && !w.seen.Swap(true) {
		tc.SetReadDeadline(time.Now())
	}
}

func classifyConnect(ctx context.Context, addr string, err error) *Error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return newError(KindRefused, err, "connection refused by %s: nothing listens there (member stopped, or wrong port)", addr)
	case isTimeout(ctx, err):
		return newError(KindTimeout, err, "TCP connect to %s timed out%s: host down or packets dropped by a firewall", addr, budget(ctx))
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return newError(KindUnreachable, err, "%s is unreachable: no route to host", addr)
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		return newError(KindUnreachable, err, "cannot resolve %q: %v", dnsErr.Name, dnsErr.Err)
	}
	return newError(KindUnreachable, err, "TCP connect to %s failed: %v", addr, err)
}

func classifyHandshake(ctx context.Context, addr, host string, err error, sent *sentCert) *Error {
	if hn, ok := errors.AsType[x509.HostnameError](err); ok {
		return newError(KindSANMismatch, err, "server certificate of %s is not valid for %q: it names %s", addr, host, sanList(hn.Certificate))
	}
	if ua, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		who := "?"
		if ua.Cert != nil {
			who = fmt.Sprintf("%q issued by %q", ua.Cert.Subject.CommonName, ua.Cert.Issuer.CommonName)
		}
		return newError(KindUnknownCA, err, "server certificate of %s (%s) is not signed by the given CA", addr, who)
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if ci.Reason == x509.Expired && ci.Cert != nil {
			now := time.Now()
			if now.Before(ci.Cert.NotBefore) {
				return newError(KindServerCertNotYetValid, err, "server certificate of %s is not valid until %s (check the clocks)", addr, ci.Cert.NotBefore.UTC().Format(time.RFC3339))
			}
			return newError(KindServerCertExpired, err, "server certificate of %s expired at %s", addr, ci.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return newError(KindServerCertInvalid, err, "server certificate of %s is not acceptable: %v", addr, ci)
	}
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		first := strings.TrimSpace(strings.ToValidUTF8(string(rh.RecordHeader[:]), "?"))
		if strings.HasPrefix(first, "HTTP") {
			return newError(KindNotTLS, err, "%s answered in plain HTTP, not TLS: wrong port, or etcd serving without TLS", addr)
		}
		return newError(KindNotTLS, err, "%s does not speak TLS (first bytes %q)", addr, rh.RecordHeader[:])
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		alert := op.Err.Error()
		var why string
		switch {
		case strings.Contains(alert, "unknown certificate authority"):
			why = "it is not signed by a CA the server trusts (etcd's --trusted-ca-file)"
		case strings.Contains(alert, "expired certificate"):
			why = "it is expired or not yet valid"
		case strings.Contains(alert, "certificate required"):
			why = "the server requires one and none was sent"
		case strings.Contains(alert, "certificate"):
			// "bad certificate" is all a server built with Go before 1.21
			// (etcd 3.4) sends for any refusal, and what newer ones send
			// for what has no alert of its own: say what we can see.
			why = sent.explain()
		default:
			return newError(KindHandshake, err, "%s refused the TLS handshake (%s)", addr, alert)
		}
		return newError(KindClientCertRejected, err, "%s rejected the client certificate: %s (%s)", addr, why, alert)
	}
	if isTimeout(ctx, err) {
		return newError(KindTimeout, err, "%s accepted TCP but gave no TLS answer%s: not a TLS server, or hung", addr, budget(ctx))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return newError(KindNotTLS, err, "%s closed the connection during the TLS handshake: not a TLS server, or it refused us", addr)
	}
	return newError(KindHandshake, err, "TLS handshake with %s failed: %v", addr, err)
}

// sentCert is what Dial answered the server's certificate request with.
type sentCert struct {
	requested bool
	leaf      *x509.Certificate // nil: no certificate sent
}

func (s *sentCert) record(c *tls.Certificate) {
	s.requested = true
	if c == nil || len(c.Certificate) == 0 {
		return
	}
	s.leaf = c.Leaf
	if s.leaf == nil {
		s.leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
}

// explain says why a server would refuse the certificate sent, as far as
// the client can tell without the server's CA.
func (s *sentCert) explain() string {
	const generic = "the server does not accept it: most often it is not signed by a CA the server trusts (etcd's --trusted-ca-file)"
	switch {
	case s.requested && s.leaf == nil:
		return "the server requires one and none was sent"
	case s.leaf == nil:
		return generic
	}
	now := time.Now()
	switch {
	case now.After(s.leaf.NotAfter):
		return fmt.Sprintf("it expired at %s", s.leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(s.leaf.NotBefore):
		return fmt.Sprintf("it is not valid until %s (check the clocks)", s.leaf.NotBefore.UTC().Format(time.RFC3339))
	case len(s.leaf.ExtKeyUsage) > 0 &&
		!slices.Contains(s.leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(s.leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
		return "it has no clientAuth extended key usage, so it is unfit for client authentication"
	}
	return generic
}

func sanList(c *x509.Certificate) string {
	if c == nil {
		return "nothing"
	}
	s := certx.SANs(c)
	if len(s) == 0 {
		return "no SANs (CN " + c.Subject.CommonName + " is not used for names)"
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// budget renders the probe's time budget for messages, " within 5s", or
// "" when ctx carries none.
func budget(ctx context.Context) string {
	if b, ok := ctx.Value(budgetKey{}).(time.Duration); ok {
		return fmt.Sprintf(" within %s", b)
	}
	return ""
}

type budgetKey struct{}

// ServingCert connects to addr (host:port) and returns the certificate the
// server presents, after verifying it against cfg exactly as an etcd
// client would. Use it on the client port with a client cert, and on the
// peer port with a cert that has clientAuth (a node's peer cert or the
// healthcheck cert), since etcd requires one there.
func ServingCert(ctx context.Context, addr string, cfg *tls.Config, opts ...Option) (*x509.Certificate, error) {
	c, _, err := Dial(ctx, addr, cfg, opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Leaf, nil
}
