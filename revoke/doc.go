// Package revoke is etcdpki certs revoke's front door: it checks the
// request (targets or serials, the reason), takes the PKI directory's
// lock and runs the runner's journaled revocation engine (runner.Revoke):
// a certificate in use is replaced and the replacement proven before its
// old serial is published in the CRL, and then every member is shown
// refusing it on its client and peer port, with no restart (etcd reads
// its CRL on every accepted connection). A run killed at any step is
// finished by running the same command again.
//
// The engine lives in package runner because member remove runs it too,
// on the remaining members. This package imports no other operation.
package revoke
