package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultTimeout bounds one endpoint's whole probe. Five seconds is
// etcdctl's command timeout: long enough for a loaded member's linearizable
// read, short enough that a dead one does not stall a rollout.
const DefaultTimeout = 5 * time.Second

// healthKey is the key read for the linearizable health check; etcdctl
// reads the same one, so both tools put the same load on the cluster.
const healthKey = "health"

// ID is an etcd member or cluster ID. It prints in hex, as etcdctl does.
type ID uint64

// String renders the ID in hex, as etcdctl does.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 16) }

// MarshalText renders the ID as hex so JSON matches the table.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 64)
	*id = ID(v)
	return err
}

// Duration is a time.Duration that reads well in JSON ("12.3ms").
type Duration time.Duration

// MarshalJSON renders the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// String rounds to what a person compares: 10µs steps under a
// millisecond, 100µs steps above.
func (d Duration) String() string {
	if time.Duration(d) < time.Millisecond {
		return time.Duration(d).Round(10 * time.Microsecond).String()
	}
	return time.Duration(d).Round(100 * time.Microsecond).String()
}

// Status is a member's answer to the Status RPC.
type Status struct {
	Version          string   `json:"version"`
	MemberID         ID       `json:"memberID"`
	Leader           ID       `json:"leader"`
	RaftTerm         uint64   `json:"raftTerm"`
	RaftIndex        uint64   `json:"raftIndex"`
	RaftAppliedIndex uint64   `json:"raftAppliedIndex"`
	DBSize           int64    `json:"dbSize"`
	DBSizeInUse      int64    `json:"dbSizeInUse"`
	IsLearner        bool     `json:"isLearner"`
	Errors           []string `json:"errors,omitempty"`
}

// Member is one entry of the member list.
type Member struct {
	ID         ID       `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

// Alarm is an active alarm raised by a member.
type Alarm struct {
	MemberID ID     `json:"memberID"`
	Alarm    string `json:"alarm"`
}

// Result is everything one probe learnt about one endpoint. A nil error
// field means the step succeeded, unless an earlier step failed and it
// never ran (see Ran).
type Result struct {
	Endpoint string   `json:"endpoint"`
	Addr     string   `json:"addr"`
	Healthy  bool     `json:"healthy"`
	Took     Duration `json:"took"`

	ConnectTook Duration `json:"connectTook"`
	Connect     *Error   `json:"connectError,omitempty"`

	HandshakeTook Duration  `json:"handshakeTook"`
	Handshake     *Error    `json:"handshakeError,omitempty"`
	ServerCert    *CertInfo `json:"serverCert,omitempty"`

	Status      *Status `json:"status,omitempty"`
	StatusError *Error  `json:"statusError,omitempty"`
	// ClusterID comes from the Status response header.
	ClusterID ID `json:"clusterID,omitempty"`

	ReadTook  Duration `json:"readTook"`
	ReadError *Error   `json:"readError,omitempty"`

	Alarms     []Alarm `json:"alarms,omitempty"`
	AlarmError *Error  `json:"alarmError,omitempty"`

	Members     []Member `json:"members,omitempty"`
	MemberError *Error   `json:"memberError,omitempty"`
}

// Step names a probe step.
type Step string

// Probe steps, in order.
const (
	StepConnect   Step = "connect"
	StepHandshake Step = "handshake"
	StepStatus    Step = "status"
	StepRead      Step = "read"
	StepAlarms    Step = "alarms"
	StepMembers   Step = "members"
)

// Ran reports whether a step was attempted: the etcd steps only run after
// a successful handshake.
func (r *Result) Ran(s Step) bool {
	switch s {
	case StepConnect:
		return true
	case StepHandshake:
		return r.Connect == nil
	}
	return r.Connect == nil && r.Handshake == nil
}

// Err returns the first reason the endpoint is unhealthy, or nil.
func (r *Result) Err() error {
	for _, e := range []*Error{r.Connect, r.Handshake, r.StatusError, r.ReadError, r.AlarmError} {
		if e != nil {
			return e
		}
	}
	if len(r.Alarms) > 0 {
		return AlarmsError(r.Alarms)
	}
	return nil
}

// AlarmsError describes active alarms as one error.
func AlarmsError(alarms []Alarm) *Error {
	var parts []string
	for _, a := range alarms {
		parts = append(parts, fmt.Sprintf("%s on member %s", a.Alarm, a.MemberID))
	}
	return newError(KindAlarm, nil, "active alarm: %s", strings.Join(parts, ", "))
}

// ParseEndpoint accepts what kube-apiserver's --etcd-servers accepts for
// TLS: https://host:port. A bare host:port is taken as https. It returns
// the URL and the host:port to dial.
func ParseEndpoint(ep string) (string, string, error) {
	raw := ep
	if !strings.Contains(ep, "://") {
		raw = "https://" + ep
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", newError(KindBadEndpoint, err, "endpoint %q is not a URL: %v", ep, err)
	}
	switch {
	case u.Scheme == "http":
		return "", "", newError(KindBadEndpoint, nil, "endpoint %q uses http: the client certificate would never be sent and traffic would be in clear text; use https://", ep)
	case u.Scheme != "https":
		return "", "", newError(KindBadEndpoint, nil, "endpoint %q: scheme %q is not supported (use https://host:port)", ep, u.Scheme)
	case u.Port() == "":
		return "", "", newError(KindBadEndpoint, nil, "endpoint %q has no port (etcd's client port is usually 2379)", ep)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.User != nil:
		return "", "", newError(KindBadEndpoint, nil, "endpoint %q must be just https://host:port", ep)
	}
	addr := net.JoinHostPort(u.Hostname(), u.Port())
	return "https://" + addr, addr, nil
}

// Endpoint probes one etcd endpoint with tlsCfg, all of it within timeout:
// TCP connect, TLS handshake (classified), then concurrently Status, a
// linearizable read, the alarm list and the member list. It never returns
// an error: every failure is recorded in the Result.
func Endpoint(ctx context.Context, endpoint string, tlsCfg *tls.Config, timeout time.Duration, opts ...Option) Result {
	start := time.Now()
	r := probeEndpoint(ctx, endpoint, tlsCfg, timeout, optionsOf(opts))
	r.Took = Duration(time.Since(start))
	r.Healthy = r.Err() == nil
	return r
}

func probeEndpoint(ctx context.Context, endpoint string, tlsCfg *tls.Config, timeout time.Duration, o options) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r := Result{Endpoint: endpoint}
	u, addr, err := ParseEndpoint(endpoint)
	if err != nil {
		r.Connect = err.(*Error)
		return r
	}
	r.Addr = addr
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, budgetKey{}, timeout), timeout)
	defer cancel()

	if tlsCfg == nil {
		r.Connect = newError(KindBadEndpoint, nil, "no TLS configuration for %s", endpoint)
		return r
	}
	// One session cache per probe: the etcd client's handshake resumes the
	// session Dial just verified instead of doing a second full handshake.
	// Dial itself never resumes, so the certificate it reports is the one
	// served right now.
	// The etcd client verifies the server with the same config, so it
	// tolerates what Dial tolerates.
	tlsCfg = tolerate(o, tlsCfg, addr).Clone()
	tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	conn, stage, err := Dial(ctx, addr, tlsCfg)
	if err != nil {
		if stage == StageConnect {
			r.Connect = err.(*Error)
		} else {
			r.Handshake = err.(*Error)
		}
		return r
	}
	conn.Close()
	r.ConnectTook, r.HandshakeTook = Duration(conn.ConnectTook), Duration(conn.HandshakeTook)
	r.ServerCert = NewCertInfo(conn.Leaf)

	deadline, _ := ctx.Deadline()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{u},
		TLS:         tlsCfg,
		DialTimeout: time.Until(deadline),
		// The client's own logging would interleave with our report; every
		// error it hits reaches us through the RPCs below.
		Logger: zap.NewNop(),
	})
	if err != nil {
		r.StatusError = newError(KindRPC, err, "etcd client for %s: %v", u, err)
		return r
	}
	defer cli.Close()
	etcdSteps(ctx, cli, &r)
	return r
}

// etcdSteps runs the four etcd RPCs concurrently so that one slow answer
// (a linearizable read without quorum waits for the deadline) does not eat
// the others' time.
func etcdSteps(ctx context.Context, cli *clientv3.Client, r *Result) {
	var wg sync.WaitGroup
	wg.Go(func() {
		// Status over the client's own connection; clientv3's Status would
		// dial a second one.
		resp, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Status(ctx, &pb.StatusRequest{})
		if err != nil {
			r.StatusError = rpcError(ctx, "status", r.Addr, err)
			return
		}
		r.ClusterID = ID(resp.Header.ClusterId)
		r.Status = &Status{
			Version:          resp.Version,
			MemberID:         ID(resp.Header.MemberId),
			Leader:           ID(resp.Leader),
			RaftTerm:         resp.RaftTerm,
			RaftIndex:        resp.RaftIndex,
			RaftAppliedIndex: resp.RaftAppliedIndex,
			DBSize:           resp.DbSize,
			DBSizeInUse:      resp.DbSizeInUse,
			IsLearner:        resp.IsLearner,
			Errors:           resp.Errors,
		}
	})
	wg.Go(func() {
		start := time.Now()
		_, err := cli.Get(ctx, healthKey)
		r.ReadTook = Duration(time.Since(start))
		// Permission denied still went through consensus, so the member
		// is serving; etcdctl counts it as healthy too.
		if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
			r.ReadError = rpcError(ctx, "linearizable read", r.Addr, err)
		}
	})
	wg.Go(func() {
		resp, err := cli.AlarmList(ctx)
		if err != nil {
			r.AlarmError = rpcError(ctx, "alarm list", r.Addr, err)
			return
		}
		for _, a := range resp.Alarms {
			r.Alarms = append(r.Alarms, Alarm{MemberID: ID(a.MemberID), Alarm: a.Alarm.String()})
		}
	})
	wg.Go(func() {
		// Serializable: each member's own view, which is what "do the
		// member lists agree" compares, and it answers without quorum.
		resp, err := cli.MemberList(ctx, clientv3.WithSerializable())
		if err != nil {
			r.MemberError = rpcError(ctx, "member list", r.Addr, err)
			return
		}
		for _, m := range resp.Members {
			r.Members = append(r.Members, Member{ID: ID(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
		}
	})
	wg.Wait()
}

// rpcError classifies an etcd RPC failure after a good TLS handshake.
func rpcError(ctx context.Context, what, addr string, err error) *Error {
	st, _ := status.FromError(err)
	msg := err.Error()
	if st != nil {
		msg = st.Message()
	}
	// gRPC messages can span lines; a report row is one line.
	msg = strings.Join(strings.Fields(msg), " ")
	switch {
	case st != nil && st.Code() == codes.Unimplemented,
		strings.Contains(msg, "unexpected HTTP status code"),
		strings.Contains(msg, "content-type"),
		strings.Contains(msg, "http2: frame too large"):
		// The HTTP status says it all; the content-type detail after it
		// only makes the line longer.
		short, _, _ := strings.Cut(msg, "; transport:")
		return newError(KindNotEtcd, err, "%s answered TLS but is not an etcd gRPC server (%s: %s)", addr, what, short)
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrGRPCNoLeader):
		return newError(KindRPC, err, "%s on %s failed: the member has no leader (quorum lost?)", what, addr)
	case isTimeout(ctx, err) || st != nil && st.Code() == codes.DeadlineExceeded:
		hint := ""
		if what == "linearizable read" {
			hint = ": no quorum, or the member cannot reach the leader"
		}
		return newError(KindTimeout, err, "%s on %s got no answer%s%s", what, addr, budget(ctx), hint)
	case st != nil && st.Code() == codes.Unavailable:
		return newError(KindRPC, err, "%s on %s: etcd unavailable: %s", what, addr, msg)
	}
	return newError(KindRPC, err, "%s on %s failed: %s", what, addr, msg)
}
