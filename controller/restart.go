package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/runner"
)

// Restart grants: etcd reads its CA file at start, kube-apiserver its
// --etcd-cafile and --etcd-servers, so some operations need a process
// restarted on its host. The controller never runs a command on a host:
// it grants one restart at a time in status.restart, and the agent of
// that host runs its spec's restart command and sets doneAt. Everything
// the exchange needs is in the EtcdCluster, so a replica that takes over
// the Lease finds an outstanding grant and waits for it as the killed one
// would have; it never grants it a second time.

// grantTimeout bounds the hand-off before a grant: MoveLeader answers
// once the transferee leads, and the wait until every member follows it
// is rotate's.
const grantTimeout = 30 * time.Second

// restartGrant is what grantRestart did or found.
type restartGrant struct {
	// Done says the host's agent reported the restart done.
	Done bool
	// Granted says this call wrote the grant.
	Granted bool
	// HandOff names the member leadership moved to before a grant to the
	// leader ("" when none moved).
	HandOff string
	// Waiting says why nothing was granted yet: another grant is
	// outstanding, or the cluster is not healthy.
	Waiting string
}

// grantRestart asks for one restart of host (a node, or a client such as
// kube-apiserver) for reason, the key under which the caller asks again
// until it is done. It is idempotent: the grant of the same host and
// reason is found and its doneAt read; another outstanding grant is
// waited for; only a cluster whose every member is healthy (probed with
// cfg) gets a new grant, and the etcd leader only after leadership moved
// away, as the CLI's roll hands it off. rd reads past any cache: a grant
// is decided on the object as it is. prefer, when not empty, names
// members to hand leadership to first (those already restarted).
func grantRestart(ctx context.Context, c client.Client, rd client.Reader, key client.ObjectKey, spec *cluster.Spec, cfg *tls.Config, host, reason string, prefer ...string) (restartGrant, error) {
	var cl v1alpha1.EtcdCluster
	if err := rd.Get(ctx, key, &cl); err != nil {
		return restartGrant{}, err
	}
	g := cl.Status.Restart
	switch {
	case g != nil && g.Host == host && g.Reason == reason:
		if g.DoneAt != nil {
			return restartGrant{Done: true}, nil
		}
		return restartGrant{Waiting: fmt.Sprintf("the agent of %s has not reported its restart (%s) done yet", host, reason)}, nil
	case g != nil && g.DoneAt == nil:
		return restartGrant{Waiting: fmt.Sprintf("a restart of %s (%s) is outstanding", g.Host, g.Reason)}, nil
	}
	h := probe.Health(ctx, spec.ClientEndpoints(), cfg, runner.ProbeTimeout)
	if err := runner.HealthyOrError(spec, h, "no restart granted"); err != nil {
		return restartGrant{Waiting: err.Error()}, nil
	}
	var res restartGrant
	if idx := nodeIndex(spec, host); idx >= 0 && h.Endpoints[idx].Status != nil && h.Endpoints[idx].Status.MemberID == h.Leader {
		to, err := handOff(ctx, spec, cfg, h, idx, prefer)
		if err != nil {
			return restartGrant{}, err
		}
		res.HandOff = to
	}
	err := kube.UpdateStatus(ctx, c, key, func(cl *v1alpha1.EtcdCluster) error {
		cur := cl.Status.Restart
		if cur != nil && cur.DoneAt == nil {
			// Someone granted meanwhile; the next call sees it.
			return errGrantRace
		}
		now := metav1.Now()
		cl.Status.Restart = &v1alpha1.RestartGrant{Host: host, Reason: reason, GrantedAt: &now}
		return nil
	})
	if errors.Is(err, errGrantRace) {
		return restartGrant{Waiting: "another restart was granted meanwhile"}, nil
	}
	if err != nil {
		return restartGrant{}, fmt.Errorf("grant a restart of %s: %w", host, err)
	}
	res.Granted = true
	return res, nil
}

var errGrantRace = errors.New("grant race")

// clearRestart removes a done grant of host for reason when an operation
// is over, so that the status shows no restart; an outstanding or other
// grant is left alone.
func clearRestart(ctx context.Context, c client.Client, key client.ObjectKey, host, reason string) error {
	return kube.UpdateStatus(ctx, c, key, func(cl *v1alpha1.EtcdCluster) error {
		if g := cl.Status.Restart; g != nil && g.Host == host && g.Reason == reason && g.DoneAt != nil {
			cl.Status.Restart = nil
		}
		return nil
	})
}

func nodeIndex(s *cluster.Spec, name string) int {
	for i, n := range s.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// handOff moves leadership from the member at idx to another healthy
// one (a preferred one first, else the most caught up) and waits until
// every member follows it and it committed in its own term, as rotate's
// hand-off does. It returns the new leader's name.
func handOff(ctx context.Context, s *cluster.Spec, cfg *tls.Config, h *probe.Cluster, idx int, prefer []string) (string, error) {
	best := -1
	for i, e := range h.Endpoints {
		if i == idx || !e.Healthy || e.Status == nil || e.Status.IsLearner {
			continue
		}
		pi, pb := contains(prefer, s.Nodes[i].Name), best >= 0 && contains(prefer, s.Nodes[best].Name)
		if best < 0 || pi && !pb || pi == pb && e.Status.RaftAppliedIndex > h.Endpoints[best].Status.RaftAppliedIndex {
			best = i
		}
	}
	if best < 0 {
		return "", fmt.Errorf("%s leads and no other healthy member can take over", s.Nodes[idx].Name)
	}
	to := h.Endpoints[best].Status.MemberID
	ctx, cancel := context.WithTimeout(ctx, grantTimeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Nodes[idx].ClientURLs[0]}, TLS: cfg, DialTimeout: runner.ProbeTimeout, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("etcd client for %s: %w", s.Nodes[idx].Name, err)
	}
	defer cli.Close()
	if _, err := cli.MoveLeader(ctx, uint64(to)); err != nil {
		return "", fmt.Errorf("move leadership from %s to %s: %w", s.Nodes[idx].Name, s.Nodes[best].Name, err)
	}
	var startIdx uint64
	for {
		h := probe.Health(ctx, s.ClientEndpoints(), cfg, runner.ProbeTimeout)
		l, ok := h.LeaderResult()
		switch {
		case !ok || h.Leader != to:
		case startIdx == 0:
			startIdx = l.Status.RaftIndex
		case h.Healthy() && h.MinRaftIndex > startIdx:
			return s.Nodes[best].Name, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not settle as leader: %w", s.Nodes[best].Name, ctx.Err())
		case <-time.After(runner.PollInterval / 4):
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
