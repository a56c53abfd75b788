package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// membershipClient is an etcd client of endpoints with the run's probe
// certificate, or its root client for admin (member add, remove and
// promote, which etcd allows only root once auth is on).
func (c *Cluster) membershipClient(endpoints []string, admin bool) (*clientv3.Client, error) {
	cfg, err := c.TLS()
	if admin {
		cfg, err = c.AdminTLS()
	}
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	if len(endpoints) == 0 {
		// etcd's own word for this ("etcdclient: no available
		// endpoints") names nothing the operator can act on.
		return nil, input.Errorf("no etcd member to ask: the spec %s names no running member of the cluster besides the node being changed", specName(c.Spec))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: cfg, DialTimeout: ProbeTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

// AdminClient is an etcd client of every member presenting the run's
// root client certificate (see AdminTLS), for the Auth API. The caller
// closes it.
func (c *Cluster) AdminClient() (*clientv3.Client, error) {
	return c.membershipClient(nil, true)
}

// MemberList is etcd's member list, linearizable.
func (c *Cluster) MemberList(ctx context.Context) ([]*etcdserverpb.Member, error) {
	return c.listMembers(ctx)
}

// LocalMemberList is the member list as any one reachable member knows
// it (serializable): it answers without a quorum, which is what a
// pre-flight check must be able to describe.
func (c *Cluster) LocalMemberList(ctx context.Context) ([]*etcdserverpb.Member, error) {
	return c.listMembers(ctx, clientv3.WithSerializable())
}

func (c *Cluster) listMembers(ctx context.Context, opts ...clientv3.OpOption) ([]*etcdserverpb.Member, error) {
	cli, err := c.membershipClient(nil, false)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd member list from %s: %w", strings.Join(c.Endpoints(), ","), err)
	}
	return resp.Members, nil
}

// MemberByPeerURL finds the member with peer URL u.
func MemberByPeerURL(ms []*etcdserverpb.Member, u string) *etcdserverpb.Member {
	for _, m := range ms {
		if slices.Contains(m.PeerURLs, u) {
			return m
		}
	}
	return nil
}

// MemberByName finds the member named name (a member that never started has
// no name yet).
func MemberByName(ms []*etcdserverpb.Member, name string) *etcdserverpb.Member {
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// AddLearner adds a learner with peerURLs and returns its member ID.
func (c *Cluster) AddLearner(ctx context.Context, peerURLs []string) (uint64, error) {
	cli, err := c.membershipClient(nil, true)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	var resp *clientv3.MemberAddResponse
	err = retryUnhealthy(ctx, func(ctx context.Context) (err error) {
		resp, err = cli.MemberAddAsLearner(ctx, peerURLs)
		// Seen on etcd 3.6.16 right after a member was removed: the add
		// is refused with "member not found" for a moment; a later
		// attempt succeeds. Taken as transient, like "unhealthy".
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			err = rpctypes.ErrUnhealthy
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("etcd member add --learner %s: %w", strings.Join(peerURLs, ","), err)
	}
	return resp.Member.ID, nil
}

// RemoveMember removes the member with id from the cluster.
func (c *Cluster) RemoveMember(ctx context.Context, id uint64) error {
	cli, err := c.membershipClient(nil, true)
	if err != nil {
		return err
	}
	defer cli.Close()
	err = retryUnhealthy(ctx, func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, id)
		return err
	})
	if err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
		return fmt.Errorf("etcd member remove %x: %w", id, err)
	}
	return nil
}

// Promote promotes learner id, again while etcd answers that it is not
// in sync with the leader, until timeout; behind says how far behind it
// is for the message when the time is up.
func (c *Cluster) Promote(ctx context.Context, id uint64, timeout time.Duration, behind func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.promoteOnLeader(ctx, id)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) && !strings.Contains(err.Error(), "in sync with leader"):
			return fmt.Errorf("etcd member promote %x: %w", id, err)
		case time.Now().After(deadline):
			return fmt.Errorf("etcd member promote %x: the learner is still not in sync with the leader after --member-timeout %s (%s): %w", id, timeout, behind(), err)
		}
		time.Sleep(PollInterval)
	}
}

// promoteOnLeader asks the leader itself to promote id. A follower
// forwards a promotion to the leader over the peer port, where etcd 3.6
// finds no user on the forwarded request and, with auth on, refuses it
// ("auth: user name is empty") until the client times out; the leader
// decides it directly, with the root client's identity.
func (c *Cluster) promoteOnLeader(ctx context.Context, id uint64) error {
	var endpoints []string
	if h, err := c.Health(ctx); err == nil {
		if l, ok := h.LeaderResult(); ok {
			endpoints = []string{l.Endpoint}
		}
	}
	cli, err := c.membershipClient(endpoints, true)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cli.MemberPromote(rctx, id)
	return err
}

// LearnerStatus is the learner's applied raft index and the leader's
// index. The leader is asked first: under client load its index grows
// while the learner is asked, so the other order would count entries
// committed in between as the learner's lag.
func (c *Cluster) LearnerStatus(ctx context.Context, learnerURL string) (applied, leaderIdx uint64, err error) {
	h, err := c.Health(ctx)
	if err != nil {
		return 0, 0, err
	}
	l, ok := h.LeaderResult()
	if !ok {
		return 0, 0, errors.New("no agreed leader among the voting members")
	}
	cli, err := c.membershipClient([]string{learnerURL}, false)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	st, err := cli.Status(ctx, learnerURL)
	if err != nil {
		return 0, 0, fmt.Errorf("status of the learner at %s: %w", learnerURL, err)
	}
	return st.RaftAppliedIndex, l.Status.RaftIndex, nil
}

// unhealthyRetry bounds the retries of a membership change that etcd's
// strict reconfiguration check refuses as "unhealthy cluster": it wants
// every member connected for five seconds (etcd's HealthInterval), which
// a cluster just started, or a member just restarted, is not yet.
const unhealthyRetry = 20 * time.Second

func retryUnhealthy(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(unhealthyRetry)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := op(rctx)
		cancel()
		if err == nil || !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(PollInterval * 5)
	}
}

// MemberedSpec is the spec less its nodes that are not voting members of
// the cluster (matched by peer URL or name), keeping keep (the node being
// added) and dropping drop: probes and proofs look only at members, so a
// spec node yet to be added does not count as an unhealthy member.
func (c *Cluster) MemberedSpec(ctx context.Context, keep, drop string) (*cluster.Spec, error) {
	ms, err := c.LocalMemberList(ctx)
	if err != nil {
		return nil, err
	}
	out := *c.Spec
	voters := 0
	out.Nodes = slices.DeleteFunc(slices.Clone(c.Spec.Nodes), func(n cluster.Node) bool {
		switch n.Name {
		case keep:
			return false
		case drop:
			return true
		}
		mb := MemberByPeerURL(ms, n.PeerURLs[0])
		if mb == nil {
			mb = MemberByName(ms, n.Name)
		}
		if mb == nil || mb.IsLearner {
			return true
		}
		voters++
		return false
	})
	if voters == 0 {
		var names []string
		for _, m := range ms {
			if !m.IsLearner {
				names = append(names, fmt.Sprintf("%s (%s)", m.Name, strings.Join(m.PeerURLs, ",")))
			}
		}
		return nil, input.Errorf("no node in the spec %s is a voting member of the cluster at %s (its voting members: %s): the spec must name the running members", specName(c.Spec), strings.Join(c.Endpoints(), ","), strings.Join(names, ", "))
	}
	return &out, nil
}

// specName names the spec in messages: its file, or "made from flags".
func specName(s *cluster.Spec) string {
	if s.File == "" {
		return "(made from flags)"
	}
	return s.File
}
