// Package adopt takes a running etcd cluster's PKI under management as it
// is: its CA is imported, the certificates its members serve are observed
// on the wire and checked against the spec, the pairs the operator has
// copies of (kubeadm, cfssl-recipe or kubespray file names) are imported
// byte for byte, and every certificate without a pair is recorded as held
// on its host with its expiry. Nothing on the cluster changes: no file on
// a host is written, no member restarts, no certificate is reissued until
// it is due, when rotate renews it like any other.
//
// Everything here reads: the sources (sources.go), the wire (observe.go,
// through internal/probe) and the report (report.go). The one write is
// issue.Adopt, after the report says the cluster matches the spec (or the
// operator accepted the mismatches).
package adopt
