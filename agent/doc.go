// Package agent renews the certificates of one host (an etcd node, or a
// client such as kube-apiserver) where they live: it makes each new key
// in memory, asks for the certificate through a Sign function (the
// Kubernetes CSR API, in `etcdpki agent`), checks what comes back,
// switches the pair atomically in the bundle's store (issue.InstallPair,
// the key's one write) and proves the new pair on the wire. A key is
// never sent and never written anywhere else: a run killed before the
// switch leaves nothing of it behind.
//
// The files, by concern: agent.go the host and one renewal's steps;
// prove.go the proofs on the wire; metrics.go the node_exporter
// textfile.
package agent
