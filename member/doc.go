// Package member is etcdpki member add and member remove: each moves the
// live cluster one member toward the spec, with a journal of steps
// (runner.MemberJournal) so that a run killed at any step is finished by
// running the same command again.
//
// Add (add.go) issues the node's certificates, adds it as a learner,
// writes its config, starts it, promotes it once caught up, proves it
// serves its certificates, then updates kube-apiserver's etcd servers
// (apiserver.go) and the other members' configs. Remove (remove.go)
// updates kube-apiserver first, hands leadership away from the member,
// removes it, revokes its certificates through the runner's revocation
// engine (the serials found by serials.go) with every remaining member
// proven refusing them, and archives its bundle.
//
// It runs on package runner (lock, journal, the etcd membership API,
// deploys, proofs) and imports no other operation.
package member
