// Package etcdtest runs real etcd clusters for tests, from the files
// etcdpki itself writes.
//
// Start writes a local cluster spec (member i is NodeName(i) on
// NodeIP(i) = 127.0.0.i, with free ports so parallel test packages do not
// collide), runs issue.Init on it into a temporary PKI directory, starts
// every member as `etcd --config-file PKI/nodes/NODE/etcd.conf.yml` and
// waits until each answers a linearizable read with the kube-apiserver's
// client certificate. Nothing about etcd or TLS is faked: the binaries are
// the real etcd and etcdctl v3.6.16 that `make etcd` builds into ./bin
// ($ETCD_BIN and $ETCDCTL_BIN select others).
//
//	func TestSomething(t *testing.T) {
//		c := etcdtest.Start(t, etcdtest.Options{})
//		cli := c.Client(t) // kube-apiserver's cert, every endpoint
//		...
//		leader, err := c.Leader(ctx)
//		err = c.Member("etcd-2").Restart() // SIGTERM, then re-exec
//	}
//
// Options.Edit changes the spec before issue.Init sees it (validities, key
// algorithms, clients, restart templates). Cluster.AddNode adds a node to
// the spec and runs issue.Init again, as an operator growing the cluster
// would. Cluster.Client, ClientTLS and TLSConfig build real etcd clients
// with any certificate; Cluster.Etcdctl runs the real etcdctl; Leader,
// Member.ID and Member.Log answer what a test needs to know about members.
//
// Under `go test -short` the tests that use the harness skip; otherwise a
// missing etcd binary fails them with a message saying to run `make etcd`.
//
// # Processes
//
// Members are children of the test binary, each in its own process group.
// Stop sends SIGTERM and waits, Kill sends SIGKILL, Restart stops and
// starts the same config again (etcd re-reads its trusted CA file only at
// start, so this is the restart a CA rotation needs). Member.Log holds the
// member's output across restarts. When the test ends every member is
// killed, and when it failed the tail of each member's log is printed
// (ETCDTEST_FULL_LOGS=1 prints all of it). On Linux the members also get
// SIGKILL as their parent-death signal, so a test binary killed by
// -timeout, which runs no cleanup, takes its etcd processes with it.
//
// # Restart commands for rotate
//
// `etcdpki rotate` restarts members by running each node's `restart`
// command template. A harness spec sets every node's template to the
// cluster's control command (see Cluster.ControlCommand):
//
//	'/tmp/TestX.../etcdtest-ctl' restart {{.Name}}
//
// The control script (bash) sends the request over loopback to the test
// binary, which restarts the member itself and answers once the new
// process listens; the script exits 0, or 1 with the harness's error. The
// member therefore stays the test's child: its log is captured, its
// cleanup is guaranteed, and Stop, Kill and Restart keep working on it.
// Verbs start, stop and kill work the same way, so a test can write
// templates such as ControlCommand("kill") to simulate a restart that
// leaves the member down.
//
// It imports issue, the one import from below issue back up to it, on
// purpose: the clusters it starts run on exactly the files `etcdpki init`
// writes, so every test of probe, verify and rotate also checks init's
// output, and no second writer of the layout exists to drift from it.
// Only tests import this package (it lives under internal/testharness),
// so production code keeps its one-way imports.
package etcdtest
