package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// pollInterval is how often a restarted member is probed. A tenth of a
// second keeps the wait within a poll of the real restart time, which is
// what the total rotation time is measured against, at the cost of a few
// cheap TLS handshakes.
const PollInterval = 100 * time.Millisecond

// probeTimeout bounds one health probe of one endpoint while waiting.
const ProbeTimeout = 2 * time.Second

// caughtUpSlack is how many raft entries a member may trail the leader
// and still count as caught up: the two are probed concurrently, and
// under client load the leader commits a few entries in between.
const CaughtUpSlack = 50

// Cluster talks to the running members with a probe client
// certificate minted from the CA for this run (see probeTLS): no client
// certificate on disk has to be valid for rotate to see the cluster.
type Cluster struct {
	Spec  *cluster.Spec
	paths pki.Paths
	inv   *pki.Inventory
	// ProbeOpts are the probes' policy: a rotation tolerates expired server
	// certificates (see rotate/expired.go); a CA rotation and the final proof
	// of a run that found some do not.
	ProbeOpts []probe.Option
	probe     probeCert
}

// TLS reads the CA afresh (a recovery may have replaced it) and presents
// the run's probe certificate.
func (c *Cluster) TLS() (*tls.Config, error) {
	return c.probeTLS()
}

// Endpoints are the cluster's client URLs, in spec order.
func (c *Cluster) Endpoints() []string { return c.Spec.ClientEndpoints() }

// For is the etcd cluster of s, a part of the command's spec (the members
// that carry a membership change), probed with c's inventory and policy.
func (c *Cluster) For(s *cluster.Spec) *Cluster {
	return &Cluster{Spec: s, paths: c.paths, inv: c.inv, ProbeOpts: c.ProbeOpts}
}

// Health probes every member with the run's probe policy (ProbeOpts).
func (c *Cluster) Health(ctx context.Context) (*probe.Cluster, error) {
	cfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	return probe.Health(ctx, c.Endpoints(), cfg, ProbeTimeout, c.ProbeOpts...), nil
}

// UnhealthyError is the precondition of a rolling restart failing: some
// member is not healthy, so restarting another could lose quorum.
type UnhealthyError struct {
	// Members names each unhealthy member with its reason.
	Members []string
	// Reason is a cluster-wide problem (no leader, members disagree).
	Reason string
	// When says when it was found: "refusing to change anything".
	When string
}

func (e *UnhealthyError) Error() string {
	msg := "cluster is not healthy, " + e.When
	if len(e.Members) > 0 {
		msg += ": " + strings.Join(e.Members, "; ")
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// ExitCode makes the CLI exit 1: a failed check, not bad input.
func (e *UnhealthyError) ExitCode() int { return 1 }

// HealthyOrError says why a probe is not a healthy cluster; when says
// what that means for the run.
func HealthyOrError(s *cluster.Spec, h *probe.Cluster, when string) error {
	if h.Healthy() {
		return nil
	}
	e := &UnhealthyError{When: when}
	for i, r := range h.Endpoints {
		if r.Healthy {
			continue
		}
		name := r.Endpoint
		if i < len(s.Nodes) {
			name = s.Nodes[i].Name + " (" + r.Endpoint + ")"
		}
		e.Members = append(e.Members, fmt.Sprintf("%s: %v", name, r.Err()))
	}
	if len(e.Members) == 0 {
		switch {
		case h.ClusterID == 0:
			e.Reason = "the endpoints report different cluster IDs"
		case h.Leader == 0:
			e.Reason = "the members do not agree on one leader"
		case !h.MembersAgree:
			e.Reason = "the members' member lists disagree"
		}
	}
	return e
}

// MoveLeader hands leadership from the member at fromURL to member to.
// The request must reach the current leader, so the client is pinned to
// its endpoint; etcd answers once the transferee leads. It is an admin
// call (root's once auth is on).
func (c *Cluster) MoveLeader(ctx context.Context, fromURL string, to probe.ID) error {
	cfg, err := c.AdminTLS()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{fromURL}, TLS: cfg, DialTimeout: ProbeTimeout, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client for %s: %w", fromURL, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.MoveLeader(ctx, uint64(to)); err != nil {
		return fmt.Errorf("move leader from %s to member %s: %w", fromURL, to, err)
	}
	return nil
}

// WaitLeader waits until every member names to as leader and to has
// applied an entry of its own term, so that the member about to be
// stopped is no longer on anyone's path to a commit: followers forward
// to the new leader, and the new leader has a working quorum without it.
func (c *Cluster) WaitLeader(ctx context.Context, to probe.ID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := c.TLS()
	if err != nil {
		return err
	}
	var startIdx uint64
	for {
		h := probe.Health(ctx, c.Endpoints(), cfg, ProbeTimeout, c.ProbeOpts...)
		l, ok := h.LeaderResult()
		switch {
		case !ok || h.Leader != to:
		case startIdx == 0:
			startIdx = l.Status.RaftIndex
		case h.Healthy() && h.MinRaftIndex > startIdx:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("member %s did not settle as leader: %w", to, ctx.Err())
		case <-time.After(PollInterval / 4):
		}
	}
}

// ServingSerial returns the serial of the certificate presented on
// addr (host:port), verified against the etcd CA like any client would.
func ServingSerial(ctx context.Context, addr string, cfg *tls.Config, opts ...probe.Option) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	c, err := probe.ServingCert(ctx, addr, cfg, opts...)
	if err != nil {
		return "", err
	}
	return certx.Serial(c), nil
}

// WaitServing waits until node serves the wanted serials on its client
// and peer ports, answers a linearizable read and has caught up with the
// leader. It returns the last reason for waiting when the time is up.
func (c *Cluster) WaitServing(ctx context.Context, n cluster.Node, wantServer, wantPeer string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	peerAddr, err := PeerAddr(n)
	if err != nil {
		return err
	}
	idx := -1
	for i, m := range c.Spec.Nodes {
		if m.Name == n.Name {
			idx = i
		}
	}
	// Read once per wait: the apiserver's pair does not change while a
	// member restarts (renewal is over, and the lock keeps others out).
	cfg, err := c.TLS()
	if err != nil {
		return err
	}
	last := errors.New("not probed yet")
	for {
		last = c.gates(ctx, cfg, idx, peerAddr, wantServer, wantPeer)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not back within %s: %w", timeout, last)
		case <-time.After(PollInterval):
		}
	}
}

// gates probes the cluster once. The client port's serial comes from the
// health probe's own handshake; only the peer port needs a dial of its
// own.
func (c *Cluster) gates(ctx context.Context, cfg *tls.Config, idx int, peerAddr, wantServer, wantPeer string) error {
	h := probe.Health(ctx, c.Endpoints(), cfg, ProbeTimeout, c.ProbeOpts...)
	r := h.Endpoints[idx]
	if r.ServerCert == nil {
		return fmt.Errorf("client port %s: %w", r.Endpoint, r.Err())
	}
	if got := r.ServerCert.Serial; got != wantServer {
		return fmt.Errorf("client port %s serves serial %s, want %s", r.Addr, got, wantServer)
	}
	got, err := ServingSerial(ctx, peerAddr, cfg, c.ProbeOpts...)
	if err != nil {
		return fmt.Errorf("peer port %s: %w", peerAddr, err)
	}
	if got != wantPeer {
		return fmt.Errorf("peer port %s serves serial %s, want %s", peerAddr, got, wantPeer)
	}
	if !r.Healthy {
		return fmt.Errorf("not healthy: %w", r.Err())
	}
	if !h.CaughtUp(r.Status.MemberID, CaughtUpSlack) {
		l, ok := h.LeaderResult()
		if !ok {
			return errors.New("no agreed leader to catch up with")
		}
		return fmt.Errorf("applied raft index %d trails the leader's %d", r.Status.RaftAppliedIndex, l.Status.RaftIndex)
	}
	return nil
}
