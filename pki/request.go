package pki

import (
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
)

// Request is what the spec asks the CA to sign for t: its subject and
// SANs, and the spec's leaf key and validity (leaf). The CLI signs it
// with a key it makes (issue), an agent makes its key and request from it
// (ca.NewCSR), and the controller checks an agent's request against it
// (ca.SignCSR): one description of each certificate for all three.
func (t Target) Request(leaf cluster.Leaf) ca.Request {
	return ca.Request{
		Kind: t.Kind, CommonName: t.CommonName, Organization: t.Organization, Hosts: t.Hosts,
		Key: leaf.Key, Validity: leaf.Validity,
	}
}
