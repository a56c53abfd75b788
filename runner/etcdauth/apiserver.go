package etcdauth

// APIServerKeys are the keys kube-apiserver touches outside its
// --etcd-prefix when it compacts etcd itself, each a single key (no
// range). Desired does not grant them: with auth on etcd compacts
// itself (auto-compaction in etcd.conf.yml) and the apiserver runs with
// --etcd-compaction-interval=0, so its user needs its prefix alone. They were found by test,
// not assumed: TestAPIServerTouchesOnlyItsPrefixAndTheseKeys runs
// kube-apiserver v1.37.2 with --etcd-compaction-interval=10s on a cluster
// with auth on, its user granted only its prefix and these keys, watches
// the whole keyspace from revision 1 as root, and fails on any write
// outside the prefix not listed here and on any permission error in the
// apiserver's log other than APIServerAdminRPCs.
//
// compact_rev_key is the compactor's bookkeeping: every interval each
// apiserver runs a transaction comparing and putting it (or reading it
// back), then compacts. Leases the apiserver grants for events expire
// inside etcd, so it never revokes one.
var APIServerKeys = []string{"compact_rev_key"}

// APIServerAdminRPCs are the gRPC methods kube-apiserver calls that etcd
// 3.6 allows only a user with the root role: KV.Compact is checked with
// IsAdminPermitted in the gRPC layer (v3rpc/key.go), although the apply
// layer's test says "Compaction does not need admin permission". So an
// apiserver that compacts (--etcd-compaction-interval > 0, its default
// 5m) under a user without root logs "compact failed: etcdserver:
// permission denied" every interval and etcd's history is never
// compacted, until its quota fills. Either the apiserver's user gets the
// root role, or etcd compacts itself (auto-compaction-mode and
// -retention) and the apiserver runs with --etcd-compaction-interval=0.
var APIServerAdminRPCs = []string{"/etcdserverpb.KV/Compact"}
