// Package e2e holds the end-to-end tests of etcdpki on Kubernetes: the
// controller's replicas, the agents and the CLI run as real processes
// against the real kube-apiserver and real etcd members, in the
// self-hosted setup (the apiserver stored on the cluster it manages).
// It has no production code.
package e2e
