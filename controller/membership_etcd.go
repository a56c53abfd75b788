package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/runner"
)

// etcdCallTimeout bounds one membership call: a MemberAdd or MemberRemove
// goes through raft, which under load takes a few round trips.
const etcdCallTimeout = 10 * time.Second

// etcdClient dials endpoints with the controller's probe certificate,
// minted in memory from the CA (as the prober's): no certificate of the
// controller's is ever on a disk.
func etcdClient(endpoints []string, cfg *tls.Config) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no member to ask")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: cfg, DialTimeout: runner.ProbeTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

// memberList is etcd's member list, linearizable: the one truth a
// membership change starts from.
func memberList(ctx context.Context, endpoints []string, cfg *tls.Config) ([]*etcdserverpb.Member, error) {
	cli, err := etcdClient(endpoints, cfg)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list from %s: %w", strings.Join(endpoints, ","), err)
	}
	return resp.Members, nil
}

// memberOp runs one membership call through a client of endpoints.
func memberOp(ctx context.Context, endpoints []string, cfg *tls.Config, op func(context.Context, *clientv3.Client) error) error {
	cli, err := etcdClient(endpoints, cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
	defer cancel()
	return op(ctx, cli)
}

// nodeOf is the spec node a member is: by peer URL, as member add finds
// a learner that has not started (and has no name yet), else by name, as
// MemberedSpec does: a spec node whose peer URL was edited is still that
// member, never a removal and a join.
func nodeOf(s *cluster.Spec, mb *etcdserverpb.Member) (cluster.Node, bool) {
	for _, n := range s.Nodes {
		for _, u := range mb.PeerURLs {
			if slices.Contains(n.PeerURLs, u) {
				return n, true
			}
		}
	}
	if mb.Name != "" {
		return s.Node(mb.Name)
	}
	return cluster.Node{}, false
}

// initialCluster is etcd's member list as initial-cluster, member id
// under name (a learner that has not started has no name yet): what the
// joining member's etcd.env must say.
func initialCluster(ms []*etcdserverpb.Member, id uint64, name string) (string, error) {
	var parts []string
	for _, mb := range ms {
		n := mb.Name
		if mb.ID == id {
			n = name
		}
		if n == "" {
			return "", fmt.Errorf("member %x (%s) has not started yet, so it has no name for initial-cluster", mb.ID, strings.Join(mb.PeerURLs, ","))
		}
		for _, u := range mb.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ","), nil
}

// transient says an etcd refusal is worth the next pass: the strict
// reconfiguration check right after a member change, or a learner not
// yet in sync.
func transient(err error) bool {
	return errors.Is(err, rpctypes.ErrUnhealthy) || errors.Is(err, rpctypes.ErrMemberLearnerNotReady) ||
		errors.Is(err, rpctypes.ErrMemberNotFound) || strings.Contains(err.Error(), "in sync with leader")
}

// health probes the client URLs of ms (learners excluded unless asked).
func health(ctx context.Context, ms []*etcdserverpb.Member, cfg *tls.Config, learners bool) *probe.Cluster {
	var urls []string
	for _, mb := range ms {
		if (learners || !mb.IsLearner) && len(mb.ClientURLs) > 0 {
			urls = append(urls, mb.ClientURLs[0])
		}
	}
	return probe.Health(ctx, urls, cfg, runner.ProbeTimeout)
}

func hexID(id uint64) string { return fmt.Sprintf("%x", id) }
