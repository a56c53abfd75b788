// Package livetest holds the helpers the operations' tests share on a
// live cluster (internal/testharness/etcdtest): the kube-apiserver
// stand-in load (StartLoad, CheckAcked, Classify against a run's
// hand-off windows), serials and health on the wire (Serials,
// CheckServing, CheckHealthy, RaftTerm, Pids), the revoke fixtures
// (RevokeCluster, HoldPairs, CheckVerdicts, IssuedPair), StartChild (a
// test binary re-run as a child process to kill) and a few file helpers.
//
// It imports no runner and no operation but verify (CAKeyRow reads the
// verify report), so the tests of rotate, carotate, member and revoke
// can all import it; only tests import it.
package livetest
