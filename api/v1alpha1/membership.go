package v1alpha1

// MemberStatus is one etcd member as the controller last saw it.
type MemberStatus struct {
	// Name is the node's name in the spec.
	Name string `json:"name"`
	// ID is etcd's member ID in hex; empty before it was added.
	ID string `json:"id,omitempty"`
	// State is learner, voter, or removed.
	State   string `json:"state,omitempty"`
	Message string `json:"message,omitempty"`
}
