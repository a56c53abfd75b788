// Package controller is `etcdpki controller`: the signer for the etcdpki
// CSR signer names, the upkeep of the trust ConfigMap, and the prober that
// writes an EtcdCluster's status from what its members serve on the wire.
//
// The signing decision is pure and k8s-free (match.go, as cert-manager's
// CA issuer checks a request against policy and returns bytes): the
// cluster's spec, expanded once into a pki.Inventory, is the only
// authority, and a CSR is signed only when its requester is the agent of
// the node or client the certificate belongs to and it asks for exactly
// what the spec says.
package controller
