package probe

import (
	"context"
	"crypto/tls"
	"slices"
	"sync"
	"time"
)

// Cluster is the result of probing every endpoint of one cluster at once,
// with what the endpoints agree on.
type Cluster struct {
	Endpoints []Result `json:"endpoints"`
	// ClusterID is the one cluster ID every answering endpoint reported;
	// 0 if none answered or they disagree (see ClusterIDs).
	ClusterID ID `json:"clusterID,omitempty"`
	// ClusterIDs maps each reported cluster ID to its endpoints.
	ClusterIDs map[ID][]string `json:"clusterIDs,omitempty"`
	// Leader is the leader every answering endpoint names; 0 if none has
	// a leader or they disagree (see Leaders).
	Leader ID `json:"leader,omitempty"`
	// Leaders maps each reported leader (0: none) to its endpoints.
	Leaders map[ID][]string `json:"leaders,omitempty"`
	// Members is the member list as the leader's endpoint (else the first
	// that answered) sees it; MembersAgree says whether all answers match.
	Members      []Member `json:"members,omitempty"`
	MembersAgree bool     `json:"membersAgree"`
	// Quorum is true when at least one linearizable read succeeded, which
	// etcd only allows with a leader confirmed by a quorum.
	Quorum bool `json:"quorum"`
	// MinRaftIndex and MaxRaftIndex span the answering members' raft
	// indexes.
	MinRaftIndex uint64   `json:"minRaftIndex"`
	MaxRaftIndex uint64   `json:"maxRaftIndex"`
	Took         Duration `json:"took"`
}

// Health probes all endpoints concurrently, each bounded by timeout, and
// works out what they agree on. It returns once the slowest endpoint's
// probe ends: at most about one timeout, however many endpoints hang.
// Results are in the order of endpoints.
func Health(ctx context.Context, endpoints []string, tlsCfg *tls.Config, timeout time.Duration, opts ...Option) *Cluster {
	start := time.Now()
	c := &Cluster{Endpoints: make([]Result, len(endpoints))}
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() { c.Endpoints[i] = Endpoint(ctx, ep, tlsCfg, timeout, opts...) })
	}
	wg.Wait()
	c.analyse()
	c.Took = Duration(time.Since(start))
	return c
}

// Analyse works out what already-probed endpoints agree on. Health calls
// it; it is exported for callers that probe endpoints one by one.
func Analyse(results []Result) *Cluster {
	c := &Cluster{Endpoints: results}
	c.analyse()
	return c
}

func (c *Cluster) analyse() {
	c.ClusterIDs = map[ID][]string{}
	c.Leaders = map[ID][]string{}
	var memberViews [][]Member
	var leaderView []Member
	first := true
	for _, r := range c.Endpoints {
		if r.Status != nil {
			c.ClusterIDs[r.ClusterID] = append(c.ClusterIDs[r.ClusterID], r.Endpoint)
			c.Leaders[r.Status.Leader] = append(c.Leaders[r.Status.Leader], r.Endpoint)
			if first || r.Status.RaftIndex < c.MinRaftIndex {
				c.MinRaftIndex = r.Status.RaftIndex
			}
			c.MaxRaftIndex = max(c.MaxRaftIndex, r.Status.RaftIndex)
			first = false
		}
		if r.Ran(StepRead) && r.ReadError == nil {
			c.Quorum = true
		}
		if r.MemberError == nil && r.Ran(StepMembers) {
			memberViews = append(memberViews, r.Members)
			if r.Status != nil && r.Status.MemberID == r.Status.Leader {
				leaderView = r.Members
			}
		}
	}
	if len(c.ClusterIDs) == 1 {
		for id := range c.ClusterIDs {
			c.ClusterID = id
		}
	}
	if len(c.Leaders) == 1 {
		for id := range c.Leaders {
			c.Leader = id
		}
	}
	c.MembersAgree = true
	for _, v := range memberViews[min(1, len(memberViews)):] {
		if !sameMembers(v, memberViews[0]) {
			c.MembersAgree = false
		}
	}
	switch {
	case leaderView != nil:
		c.Members = leaderView
	case len(memberViews) > 0:
		c.Members = memberViews[0]
	}
}

func sameMembers(a, b []Member) bool {
	key := func(ms []Member) []string {
		var k []string
		for _, m := range ms {
			// A member that has not started yet has no name: compare what
			// identifies it, not what it has published.
			k = append(k, m.ID.String()+"/"+slices.Min(append([]string{""}, m.PeerURLs...)))
		}
		slices.Sort(k)
		return k
	}
	return slices.Equal(key(a), key(b))
}

// Healthy reports whether every endpoint is healthy and they agree on one
// cluster, one leader and one member list.
func (c *Cluster) Healthy() bool {
	for _, r := range c.Endpoints {
		if !r.Healthy {
			return false
		}
	}
	return len(c.Endpoints) > 0 && c.ClusterID != 0 && c.Leader != 0 && c.MembersAgree
}

// Member returns the result of the endpoint that answered as member id.
func (c *Cluster) Member(id ID) (*Result, bool) {
	for i := range c.Endpoints {
		if s := c.Endpoints[i].Status; s != nil && s.MemberID == id {
			return &c.Endpoints[i], true
		}
	}
	return nil, false
}

// LeaderResult returns the result of the agreed leader's endpoint, if the
// endpoints agree on a leader and it is among them.
func (c *Cluster) LeaderResult() (*Result, bool) {
	if c.Leader == 0 {
		return nil, false
	}
	return c.Member(c.Leader)
}

// CaughtUp reports whether member id has applied everything the leader
// had committed when both were probed, within slack entries. The probes
// ran concurrently, so a busy cluster needs a small slack.
func (c *Cluster) CaughtUp(id ID, slack uint64) bool {
	m, ok := c.Member(id)
	if !ok || !m.Healthy {
		return false
	}
	l, ok := c.LeaderResult()
	if !ok {
		return false
	}
	return m.Status.RaftAppliedIndex+slack >= l.Status.RaftIndex
}
