package selfhost

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/pki"
)

// Options shape a self-hosted control plane. The zero value is a
// 3-member cluster named "selfhost" with etcdpki's default certificates.
type Options struct {
	// Name is the cluster's name in the spec (and the EtcdCluster's);
	// "" means "selfhost".
	Name string
	// Edit, when set, changes the spec before init sees it (validities,
	// renew-before, clients), as etcdtest.Options.Edit does.
	Edit func(*etcdtest.SpecFile)
	// APIServer are more apiserver options, applied after the etcd flags.
	APIServer []kubetest.Option
	// FromEnv starts the members from their etcd.env (etcdtest's
	// FromEnv): the only way etcd reads a CRL, for revocation tests.
	FromEnv bool
}

// Env is a running self-hosted control plane: three etcd members run
// from the files `etcdpki init` wrote, and a kube-apiserver whose storage
// is that cluster, reached with the PKI's apiserver-etcd-client pair.
type Env struct {
	// Etcd is the managed cluster: its members (Start, Stop, Kill, PID),
	// its spec and PKI paths, clients with any certificate.
	Etcd *etcdtest.Cluster
	// Kube is the apiserver on top of it: the admin client and config,
	// AddUser for the agents' identities, StopAPIServer/StartAPIServer.
	Kube *kubetest.Env
	// Spec is the parsed spec, SpecPath the spec file init read and
	// Inventory the spec expanded, as cmd builds it (pki.New).
	Spec      *cluster.Spec
	SpecPath  string
	Inventory *pki.Inventory
	// PKIDir is the PKI directory init wrote.
	PKIDir string
	// NodeDirs maps each node to its bundle's root on its host, the
	// directory `etcdpki agent --node NODE --dir` is pointed at. The
	// members run from these very files (a local spec), so a pair an
	// agent switches there is the pair the member serves at its next
	// handshake.
	NodeDirs map[string]string
	// APIServerDir is the apiserver client bundle's root, the directory
	// `etcdpki agent --client kube-apiserver --dir` is pointed at.
	APIServerDir string
	// EtcdFlags are the --etcd-* flags the apiserver runs with, as
	// pki.APIServerFlagsFor renders them: --etcd-certfile and
	// --etcd-keyfile are the bundle's public names, which an agent's
	// atomic switch changes in place (the apiserver loads the pair again
	// at every handshake), and --etcd-cafile the bundle's ca.crt, which
	// the apiserver reads only at start.
	EtcdFlags []string
	// APIServerLog is the apiserver's output, across restarts.
	APIServerLog *etcdtest.Buffer
}

// logTail is how many lines of the apiserver's log a failed test shows.
const logTail = 200

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Start creates the PKI with issue.Init for a 3-member cluster on
// 127.0.0.1-3 (each member its own IP SANs, free ports from etcdtest),
// starts the members from their etcd.conf.yml, then starts the real
// kube-apiserver with its storage on them, through the apiserver client
// bundle of the PKI. Everything stops when t ends, the apiserver first.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Name == "" {
		o.Name = "selfhost"
	}
	c := etcdtest.Start(t, etcdtest.Options{Name: o.Name, Edit: o.Edit, FromEnv: o.FromEnv})
	inv := c.Inventory()
	e := &Env{Etcd: c, Spec: c.Spec, SpecPath: c.SpecPath, Inventory: inv, PKIDir: c.Paths.PKI, NodeDirs: map[string]string{}}
	for _, n := range c.Spec.Nodes {
		b, ok := inv.Bundle(n.Name)
		if !ok {
			t.Fatalf("selfhost: no bundle for node %s", n.Name)
		}
		e.NodeDirs[n.Name] = b.Root
	}
	b, ok := inv.Bundle(cluster.ClientAPIServer)
	tg, ok2 := inv.Target(ca.KindAPIServer.Name)
	if !ok || !ok2 {
		t.Fatalf("selfhost: the spec has no %s client bundle", cluster.ClientAPIServer)
	}
	e.APIServerDir = b.Root
	servers := c.Spec.ClientEndpoints()
	e.EtcdFlags = pki.APIServerFlagsFor(servers, b.CAPath(), tg.CertPath(), tg.KeyPath())
	// The apiserver's own log says why it could not reach its storage;
	// it goes into the test's output when the test fails.
	apiLog := &etcdtest.Buffer{}
	output := func(env *envtest.Environment) {
		api := env.ControlPlane.GetAPIServer()
		api.Out, api.Err = apiLog, apiLog
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("selfhost: kube-apiserver log (last %d lines):\n%s", logTail, tail(apiLog.String(), logTail))
		}
	})
	opts := append([]kubetest.Option{output, kubetest.WithEtcd(strings.Join(servers, ","), b.CAPath(), tg.CertPath(), tg.KeyPath())}, o.APIServer...)
	e.Kube = kubetest.Start(t, opts...)
	e.APIServerLog = apiLog
	t.Logf("selfhost: kube-apiserver on the managed cluster with %s", strings.Join(e.EtcdFlags, " "))
	return e
}

// Pids are the members' process ids by node name (0 for a member not
// running): a renewal without restarts leaves them all as they were.
func (e *Env) Pids() map[string]int {
	out := map[string]int{}
	for _, m := range e.Etcd.Members {
		out[m.Name] = m.PID()
	}
	return out
}

// Addrs are a member's client and peer addresses (host:port).
func (e *Env) Addrs(node string) (client, peer string, err error) {
	n, ok := e.Spec.Node(node)
	if !ok {
		return "", "", fmt.Errorf("no node %s in the spec", node)
	}
	if _, client, err = probe.ParseEndpoint(n.ClientURLs[0]); err != nil {
		return "", "", err
	}
	_, peer, err = probe.ParseEndpoint(n.PeerURLs[0])
	return client, peer, err
}

var namespaces atomic.Int64

// Namespace creates a namespace of its own for a part of a test, named
// after prefix.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	return e.Kube.Namespace(t, fmt.Sprintf("%s-%d", prefix, namespaces.Add(1)))
}
