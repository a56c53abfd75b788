package controller

import (
	"strings"

	"github.com/etcdpki/etcdpki/ca"
)

// The signer names, one per profile of trust: a member's server and peer
// certificates are signed by different signers so that RBAC can grant an
// agent one without the other.
const (
	SignerServer = "etcdpki.io/etcd-server"
	SignerPeer   = "etcdpki.io/etcd-peer"
	SignerClient = "etcdpki.io/etcd-client"
)

// The agents' identities: the CSR's spec.username.
const (
	nodeUserPrefix   = "etcdpki:node:"
	clientUserPrefix = "etcdpki:client:"
)

// SignerFor is the signer that issues a kind: the server and peer kinds
// their own, every client kind the client signer.
func SignerFor(k ca.Kind) string {
	switch k.Name {
	case ca.KindServer.Name:
		return SignerServer
	case ca.KindPeer.Name:
		return SignerPeer
	}
	return SignerClient
}

// ParseIdentity reads an agent identity: etcdpki:node:NODE (node true) or
// etcdpki:client:NAME. ok is false for anything else.
func ParseIdentity(user string) (owner string, node, ok bool) {
	if n, found := strings.CutPrefix(user, nodeUserPrefix); found && n != "" {
		return n, true, true
	}
	if n, found := strings.CutPrefix(user, clientUserPrefix); found && n != "" {
		return n, false, true
	}
	return "", false, false
}
