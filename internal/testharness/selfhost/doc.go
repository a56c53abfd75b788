// Package selfhost runs the self-hosted case for tests: a kube-apiserver
// whose storage is the very etcd cluster etcdpki manages, as OpenShift
// runs it, under load both on etcd and through the apiserver.
//
// Start makes the PKI with issue.Init for three members on 127.0.0.1-3
// (etcdtest: each member its own IP SANs, free ports), starts the members
// from the etcd.conf.yml init wrote, and starts the real kube-apiserver
// (kubetest) with
//
//	--etcd-servers  every member's client URL
//	--etcd-cafile   PKI/apiserver/etcd/ca.crt
//	--etcd-certfile PKI/apiserver/apiserver-etcd-client.crt
//	--etcd-keyfile  PKI/apiserver/apiserver-etcd-client.key
//
// the files of the apiserver client bundle, the directory an agent run as
// `etcdpki agent --client kube-apiserver --dir PKI/apiserver` renews in
// place. The apiserver's etcd client (etcd's transport.TLSInfo) loads the
// pair again at every handshake, through the bundle's public names, so an
// atomic switch there is picked up without a restart; it reads the CA
// file only at start, so a CA change needs an apiserver restart. Each
// member's bundle root (Env.NodeDirs, PKI/nodes/NODE) is where a node's
// agent is pointed; the members run from those files.
//
// The loads count every request and every failure with its error, and
// run for minutes: StartEtcdLoad puts and reads back (linearizable) keys
// on every member with the apiserver's TLS; StartAPILoad creates, gets
// and updates ConfigMaps as the admin while one watch must stay unbroken
// and deliver every acknowledged write. Stop returns Stats (counts, the
// first MaxErrors failures); Stats.CheckClean wants requests made and none
// failed.
//
// For the end-to-end test of the controller and the agents: ServedSerials
// reads each member's client and peer ports with a probe certificate
// minted in memory (as rotate proves), BundleSerials and CheckServed
// compare them with the bundles, Pids shows that nothing restarted,
// LeaseHolder names the leading controller, and StartEtcdpki runs the
// etcdpki binary (built once per test binary: TestMain calls Main) as a
// process that Kill ends with SIGKILL, its output logged when the test
// fails.
//
// Only tests import this package.
package selfhost
