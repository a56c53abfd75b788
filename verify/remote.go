package verify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/probe"
)

// Endpoint check names, one row per endpoint each.
const (
	CheckTCP          = "tcp-connect"
	CheckTLS          = "tls-handshake"
	CheckServerExpiry = "server-cert-expiry"
	CheckStatus       = "etcd-status"
	CheckRead         = "linearizable-read"
	CheckAlarms       = "alarms"
)

// Cluster check names, one row each.
const (
	CheckClusterID = "cluster-id"
	CheckMembers   = "member-list"
	CheckLeader    = "leader"
	CheckCoverage  = "endpoints-cover-members"
	CheckQuorum    = "quorum"
	CheckRaftIndex = "raft-index-spread"
)

// maxRaftSpread is how far apart members' committed raft indexes may be
// before it is worth a warning. Members probed a few milliseconds apart on
// a busy cluster differ by tens of entries; a thousand means one is really
// behind (slow disk, network trouble) and the apiserver will feel it.
const maxRaftSpread = 1000

// endpointChecks turns one probe result into rows.
func endpointChecks(r *probe.Result, now time.Time, renewBefore time.Duration) []Check {
	ep := r.Endpoint
	var out []Check
	row := func(name string, st Status, kind probe.Kind, format string, args ...any) {
		out = append(out, Check{Name: name, Target: ep, Status: st, Kind: kind, Reason: fmt.Sprintf(format, args...)})
	}
	fail := func(name string, e *probe.Error) { row(name, Fail, e.Kind, "%s", e.Msg) }
	skip := func(name, why string) { row(name, Skip, "", "not run: %s", why) }

	if r.Connect != nil {
		fail(CheckTCP, r.Connect)
		for _, n := range []string{CheckTLS, CheckServerExpiry, CheckStatus, CheckRead, CheckAlarms} {
			skip(n, "no TCP connection")
		}
		return out
	}
	row(CheckTCP, OK, "", "connected to %s in %s", r.Addr, r.ConnectTook)

	if r.Handshake != nil {
		fail(CheckTLS, r.Handshake)
		switch r.Handshake.Kind {
		case probe.KindServerCertExpired, probe.KindServerCertNotYetValid:
			fail(CheckServerExpiry, r.Handshake)
		default:
			skip(CheckServerExpiry, "no TLS session")
		}
		for _, n := range []string{CheckStatus, CheckRead, CheckAlarms} {
			skip(n, "no TLS session")
		}
		return out
	}
	sc := r.ServerCert
	row(CheckTLS, OK, "", "server cert %q from %q accepted, and it accepted ours (%s)", cn(sc.Subject), cn(sc.Issuer), r.HandshakeTook)
	out = append(out, expiryCheck(CheckServerExpiry, ep, "server certificate", sc.NotBefore, sc.NotAfter, now, renewBefore))

	switch s := r.Status; {
	case r.StatusError != nil:
		fail(CheckStatus, r.StatusError)
	case s.IsLearner:
		row(CheckStatus, Warn, "", "member %s is a learner: it does not serve the apiserver's requests until promoted", s.MemberID)
	default:
		leader := "no leader"
		if s.Leader != 0 {
			leader = "leader " + memberName(r.Members, s.Leader)
			if s.Leader == s.MemberID {
				leader = "is leader"
			}
		}
		row(CheckStatus, OK, "", "etcd %s, member %s, %s, term %d, index %d, db %s", s.Version, memberName(r.Members, s.MemberID), leader, s.RaftTerm, s.RaftIndex, bytesize(s.DBSize))
	}
	if r.ReadError != nil {
		fail(CheckRead, r.ReadError)
	} else {
		row(CheckRead, OK, "", "answered in %s", r.ReadTook)
	}
	switch {
	case r.AlarmError != nil:
		fail(CheckAlarms, r.AlarmError)
	case len(r.Alarms) > 0:
		fail(CheckAlarms, probe.AlarmsError(r.Alarms))
	default:
		row(CheckAlarms, OK, "", "no active alarms")
	}
	return out
}

// clusterChecks checks what the endpoints must agree on.
func clusterChecks(c *probe.Cluster) []Check {
	answered := 0
	for _, r := range c.Endpoints {
		if r.Status != nil {
			answered++
		}
	}
	if answered == 0 {
		var out []Check
		for _, n := range []string{CheckClusterID, CheckMembers, CheckLeader, CheckCoverage, CheckQuorum, CheckRaftIndex} {
			// The endpoint rows already failed and say why; failing
			// six more rows for the same cause would bury it.
			out = append(out, clusterRow(n, Skip, "not run: no endpoint answered etcd's Status"))
		}
		return out
	}
	return []Check{idCheck(c, answered), membersCheck(c), leaderCheck(c), coverageCheck(c), quorumCheck(c), raftIndexCheck(c, answered)}
}

func clusterRow(name string, st Status, format string, args ...any) Check {
	return Check{Name: name, Target: "cluster", Status: st, Reason: fmt.Sprintf(format, args...)}
}

// idCheck: every answering endpoint is in one cluster.
func idCheck(c *probe.Cluster, answered int) Check {
	if len(c.ClusterIDs) == 1 {
		return clusterRow(CheckClusterID, OK, "all %d answering endpoints are in cluster %s", answered, c.ClusterID)
	}
	return clusterRow(CheckClusterID, Fail, "endpoints belong to different clusters: %s", groups(c.ClusterIDs))
}

// membersCheck: every endpoint sees the same member list.
func membersCheck(c *probe.Cluster) Check {
	if c.MembersAgree {
		return clusterRow(CheckMembers, OK, "%d members: %s", len(c.Members), memberNames(c.Members))
	}
	var views []string
	for _, r := range c.Endpoints {
		if r.Ran(probe.StepMembers) && r.MemberError == nil {
			views = append(views, fmt.Sprintf("%s sees [%s]", r.Endpoint, memberNames(r.Members)))
		}
	}
	return clusterRow(CheckMembers, Fail, "member lists differ: %s", strings.Join(views, "; "))
}

// leaderCheck: one leader, the same for every endpoint.
func leaderCheck(c *probe.Cluster) Check {
	switch {
	case len(c.Leaders) > 1:
		return clusterRow(CheckLeader, Fail, "endpoints disagree on the leader: %s", groups(c.Leaders))
	case c.Leader == 0:
		return clusterRow(CheckLeader, Fail, "no leader: the cluster cannot serve writes or linearizable reads")
	}
	return clusterRow(CheckLeader, OK, "all answering endpoints agree: %s", memberName(c.Members, c.Leader))
}

// coverageCheck warns of a member whose client URL is not in
// --etcd-servers: the apiserver never uses it, harmless while the others
// are up, but the apiserver has fewer places to go than the operator
// thinks.
func coverageCheck(c *probe.Cluster) Check {
	listed := map[string]bool{}
	for _, r := range c.Endpoints {
		if u, _, err := probe.ParseEndpoint(r.Endpoint); err == nil {
			listed[u] = true
		}
		if r.Status != nil {
			listed["id:"+r.Status.MemberID.String()] = true
		}
	}
	var missing []string
	for _, m := range c.Members {
		if m.IsLearner || listed["id:"+m.ID.String()] {
			continue
		}
		found := false
		for _, u := range m.ClientURLs {
			if nu, _, err := probe.ParseEndpoint(u); err == nil && listed[nu] {
				found = true
			}
		}
		if !found {
			name := m.Name
			if name == "" {
				name = m.ID.String() + " (not started)"
			}
			missing = append(missing, fmt.Sprintf("%s %v", name, m.ClientURLs))
		}
	}
	if len(missing) == 0 {
		return clusterRow(CheckCoverage, OK, "every member's client URL is among the endpoints")
	}
	return clusterRow(CheckCoverage, Warn, "not among the endpoints, so the apiserver would never use them: %s", strings.Join(missing, ", "))
}

// quorumCheck: enough voting members are healthy to serve.
func quorumCheck(c *probe.Cluster) Check {
	voters, healthy := 0, 0
	for _, m := range c.Members {
		if m.IsLearner {
			continue
		}
		voters++
		if r, ok := c.Member(m.ID); ok && r.Healthy {
			healthy++
		}
	}
	need := voters/2 + 1
	switch {
	case voters > 0 && healthy >= need:
		return clusterRow(CheckQuorum, OK, "%d of %d voting members healthy, %d needed", healthy, voters, need)
	case c.Quorum:
		// Members outside the endpoint list may make up the quorum.
		return clusterRow(CheckQuorum, OK, "a linearizable read succeeded, so a quorum exists (only %d of %d voting members reachable here)", healthy, voters)
	}
	return clusterRow(CheckQuorum, Fail, "only %d of %d voting members healthy, %d needed: the cluster cannot serve the apiserver", healthy, max(voters, 1), need)
}

// raftIndexCheck warns of a member falling behind.
func raftIndexCheck(c *probe.Cluster, answered int) Check {
	spread := c.MaxRaftIndex - c.MinRaftIndex
	switch {
	case answered < 2:
		return clusterRow(CheckRaftIndex, OK, "only one member answered (index %d)", c.MaxRaftIndex)
	case spread > maxRaftSpread:
		return clusterRow(CheckRaftIndex, Warn, "raft indexes span %d..%d (%d apart): a member is falling behind", c.MinRaftIndex, c.MaxRaftIndex, spread)
	}
	return clusterRow(CheckRaftIndex, OK, "raft indexes within %d (%d..%d)", spread, c.MinRaftIndex, c.MaxRaftIndex)
}

func groups(m map[probe.ID][]string) string {
	var parts []string
	for id, eps := range m {
		label := id.String()
		if id == 0 {
			label = "none"
		}
		parts = append(parts, fmt.Sprintf("%s: %s", label, strings.Join(eps, " ")))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// memberName renders "etcd-1 (8e9e05c52164694d)", or the bare ID when the
// member list does not name it.
func memberName(ms []probe.Member, id probe.ID) string {
	for _, m := range ms {
		if m.ID == id && m.Name != "" {
			return fmt.Sprintf("%s (%s)", m.Name, id)
		}
	}
	return id.String()
}

func memberNames(ms []probe.Member) string {
	var names []string
	for _, m := range ms {
		n := m.Name
		if n == "" {
			n = m.ID.String()
		}
		if m.IsLearner {
			n += " (learner)"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// cn pulls the CN out of a subject string for short messages.
func cn(subject string) string {
	for _, p := range strings.Split(subject, ",") {
		if v, ok := strings.CutPrefix(p, "CN="); ok {
			return v
		}
	}
	return subject
}

func bytesize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
