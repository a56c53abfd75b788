// Package etcdauth moves an etcd cluster's users, roles and grants to
// what the spec gives each certificate's common name: with
// --client-cert-auth and auth enabled, etcd takes the client
// certificate's CN as the user name, so the CA's naming is the cluster's
// identity system. It computes the desired users and roles from the spec
// (Desired), reads the live ones through clientv3's Auth API (Live),
// diffs them (Diff) and applies the diff (Apply): root first, auth
// enabled last, so the cluster is never left with auth on and no root.
package etcdauth
