package v1alpha1

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Member states, as status.members shows them.
const (
	// MemberJoining: in the spec, not yet a member of etcd.
	MemberJoining = "joining"
	// MemberLearner: added as a learner, not yet promoted.
	MemberLearner = "learner"
	// MemberVoter: a voting member.
	MemberVoter = "voter"
	// MemberRemoving: a member no longer in the spec, being removed.
	MemberRemoving = "removing"
	// MemberRemoved: out of etcd; its certificates' revocations are
	// waited for before the entry goes.
	MemberRemoved = "removed"
)

// MemberStatus is one etcd member as the controller last saw it. The
// controller writes every field but AgentReadyAt and StartedID, which
// the joining node's agent writes.
type MemberStatus struct {
	// Name is the node's name in the spec.
	Name string `json:"name"`
	// ID is etcd's member ID in hex; empty before it was added.
	ID string `json:"id,omitempty"`
	// State is joining, learner, voter, removing or removed.
	State   string `json:"state,omitempty"`
	Message string `json:"message,omitempty"`
	// ClientURL is where the member serves clients: the endpoint a
	// removal hands leadership away from.
	ClientURL string `json:"clientURL,omitempty"`
	// InitialCluster is etcd's member list as initial-cluster when the
	// learner was added, the learner under its name: what the agent
	// writes into the member's etcd.env and etcd.conf.yml.
	InitialCluster string `json:"initialCluster,omitempty"`
	// AgentReadyAt is when the joining node's agent had its certificates
	// on its host and asked to be added.
	AgentReadyAt *metav1.Time `json:"agentReadyAt,omitempty"`
	// StartedID is the learner ID the agent started the member as.
	StartedID string `json:"startedID,omitempty"`
	// HandOffAt is when the controller asked a leading member being
	// removed to hand leadership away (written just before the
	// MoveLeader): etcd drops the proposals in flight during a transfer.
	HandOffAt *metav1.MicroTime `json:"handOffAt,omitempty"`
	// Certificates are a removed member's certificates, kept until
	// their revocations are enforced.
	Certificates []MemberCertificate `json:"certificates,omitempty"`
}

// MemberCertificate is one certificate of a removed member: its target
// ID and serial, revoked when the member is gone.
type MemberCertificate struct {
	ID     string `json:"id"`
	Serial string `json:"serial"`
	// NotAfter is the certificate's expiry, so that its revocation
	// leaves the CRL once it has expired.
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
}

// Member returns the status entry of the member named name.
func (s *EtcdClusterStatus) Member(name string) (MemberStatus, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return MemberStatus{}, false
}

// SetMember replaces (or adds) the entry of m.Name, keeping the list
// sorted by name.
func (s *EtcdClusterStatus) SetMember(m MemberStatus) {
	for i := range s.Members {
		if s.Members[i].Name == m.Name {
			s.Members[i] = m
			return
		}
	}
	s.Members = append(s.Members, m)
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].Name < s.Members[j].Name })
}

// DropMember removes the entry of name, if any.
func (s *EtcdClusterStatus) DropMember(name string) {
	out := s.Members[:0]
	for _, m := range s.Members {
		if m.Name != name {
			out = append(out, m)
		}
	}
	s.Members = out
}

// EtcdServersReason starts the reason of a restart grant to the
// kube-apiserver client after a membership change; the comma-separated
// client URLs that follow are its new --etcd-servers, which its agent
// writes into its etcd-flags before it runs the restart.
const EtcdServersReason = "etcd-servers="
