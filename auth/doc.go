// Package auth is etcdpki auth apply: it moves the live cluster's etcd
// users, roles and grants to the spec's (runner/etcdauth computes the
// diff in its safe order, root first and auth enabled last), connecting
// as root with a client certificate minted in memory from the CA, and
// then proves on the wire, with every certificate in the PKI, one
// operation its grants permit and one they refuse.
//
// It runs on package runner (the PKI lock, the etcd client, the health
// gate) and imports no other operation; member add and remove and adopt
// call runner/etcdauth themselves.
package auth
