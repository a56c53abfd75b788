// cluster.go is a little over 400 lines: a Cluster's whole life (spec,
// init, start, readiness, clients, growth) stays together because tests
// read it as one recipe. Members are in member.go.

package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// Options shape a test cluster. The zero value is a 3-member cluster with
// etcdpki's default certificates.
type Options struct {
	// Members is the number of members; 0 means 3.
	Members int
	// Name is the cluster name (etcd's initial-cluster-token); "" means
	// "etcdtest".
	Name string
	// Edit, when set, may change the spec before it is written: shorter
	// validities, other key algorithms, extra clients, other restart
	// templates. Ports and IPs are already filled in.
	Edit func(*SpecFile)
	// ReadyTimeout bounds Start's wait for every member to serve; 0 means
	// 90 seconds, generous because several packages' clusters may elect
	// leaders at once on a small CI machine under -race.
	ReadyTimeout time.Duration
	// FromEnv starts each member from the etcd.env beside its
	// etcd.conf.yml (ETCD_* variables, no --config-file), as a member
	// that enforces the CRL is run: etcd reads CRL files from flags and
	// variables only.
	FromEnv bool
}

// Cluster is a set of real etcd processes running from a PKI directory
// written by issue.Init for a local spec.
type Cluster struct {
	// Spec is the parsed spec; AddNode replaces it.
	Spec *cluster.Spec
	// File is the spec as written, and SpecPath where it was written.
	File     SpecFile
	SpecPath string
	// Paths is the PKI directory's layout (Spec.PKIDir).
	Paths pki.Paths
	// Members are in spec order: Members[i] is NodeName(i+1) on NodeIP(i+1).
	Members []*Member
	// Control is the path of the cluster's control script; see
	// ControlCommand.
	Control string

	t          testing.TB
	dir        string
	opts       Options
	etcdBin    string
	etcdctlBin string
	ctl        net.Listener
	token      string
	apiTLS     *tls.Config

	mu       sync.Mutex
	closed   bool
	handlers map[string]func(verb string) error
	observer func(name, verb string, start, end time.Time)
}

// Start creates a cluster (see New), starts every member and waits until
// each answers a linearizable read with the kube-apiserver's certificate.
// When another process takes a chosen port before etcd binds it, Start
// throws the attempt away and tries again with new ports.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c := New(t, o)
		ctx, cancel := context.WithTimeout(context.Background(), c.readyTimeout())
		err := c.StartAll(ctx)
		cancel()
		if err == nil {
			return c
		}
		if attempt < attempts && c.portTaken() {
			t.Logf("etcdtest: a port was taken before etcd could bind it; retrying with new ports (%v)", err)
			c.killAll()
			continue
		}
		t.Fatalf("etcdtest: start cluster: %v", err)
	}
}

// New writes a local spec for o.Members members with free ports, runs
// issue.Init on it into a fresh temporary PKI directory and returns the
// cluster with no member started. It calls Integration, so tests using it
// skip under -short. Every member is killed when the test ends, and the
// members' logs go into the test output if it failed.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	Integration(t)
	if o.Members == 0 {
		o.Members = 3
	}
	if o.Name == "" {
		o.Name = "etcdtest"
	}
	dir := t.TempDir()
	c := &Cluster{
		t:          t,
		dir:        dir,
		opts:       o,
		etcdBin:    EtcdBin(t),
		etcdctlBin: EtcdctlBin(t),
		SpecPath:   filepath.Join(dir, "spec.yaml"),
		Control:    filepath.Join(dir, "etcdtest-ctl"),
		Paths:      pki.Paths{PKI: filepath.Join(dir, "pki")},
	}
	if err := c.startControl(); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is
	// removed: members die before their data directories go.
	t.Cleanup(c.cleanup)

	c.File = SpecFile{Name: o.Name, PKIDir: c.Paths.PKI, Local: true}
	for i := 1; i <= o.Members; i++ {
		n, err := c.newNode(i)
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		c.File.Nodes = append(c.File.Nodes, n)
	}
	if o.Edit != nil {
		o.Edit(&c.File)
	}
	if err := c.writeAndInit(); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	// The CA never changes in a test cluster, so the apiserver's config is
	// built once; its pair is read again at every handshake.
	_, crt, key := APIServerFiles(c.Paths)
	cfg, err := TLSConfig(APIServerCA(c.Paths), crt, key)
	if err != nil {
		t.Fatalf("etcdtest: kube-apiserver TLS material: %v", err)
	}
	c.apiTLS = cfg
	return c
}

func (c *Cluster) readyTimeout() time.Duration {
	if c.opts.ReadyTimeout > 0 {
		return c.opts.ReadyTimeout
	}
	return 90 * time.Second
}

// newNode describes the i-th member: its own loopback IP, free ports, and
// the cluster's control script as its restart command.
func (c *Cluster) newNode(i int) (SpecNode, error) {
	ip := NodeIP(i)
	ports, err := freePorts(ip, 2)
	if err != nil {
		return SpecNode{}, err
	}
	return SpecNode{
		Name:       NodeName(i),
		IPs:        []string{ip},
		ClientPort: ports[0],
		PeerPort:   ports[1],
		Restart:    c.ControlCommand("restart"),
	}, nil
}

// writeAndInit writes c.File, parses it as etcdpki would and runs
// issue.Init, then adds a Member for every node that has none yet.
func (c *Cluster) writeAndInit() error {
	data, err := yaml.Marshal(&c.File)
	if err != nil {
		return fmt.Errorf("marshal spec: %w", err)
	}
	if err := os.WriteFile(c.SpecPath, data, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	spec, err := cluster.Parse(data, c.SpecPath, cluster.Options{PKIDir: c.Paths.PKI})
	if err != nil {
		return fmt.Errorf("parse the harness's spec:\n%s\n%w", data, err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := issue.Init(ctx, pki.New(spec), issue.Options{Out: &out}); err != nil {
		return fmt.Errorf("issue.Init:\n%s\n%w", out.String(), err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.Spec = spec
	for _, n := range spec.Nodes[len(c.Members):] {
		c.Members = append(c.Members, &Member{
			Name:       n.Name,
			ConfigFile: c.Paths.NodeConfig(n.Name),
			ClientURL:  n.ClientURLs[0],
			PeerURL:    n.PeerURLs[0],
			DataDir:    n.DataDir,
			c:          c,
		})
	}
	return nil
}

// AddNode adds a member to the spec on the next loopback IP with free
// ports, lets edit change it, and runs issue.Init again, as an operator
// growing the cluster would. The new member is neither added to etcd's
// membership nor started: the test does `MemberAdd` and Start itself.
func (c *Cluster) AddNode(t testing.TB, edit func(*SpecNode)) *Member {
	t.Helper()
	n, err := c.newNode(len(c.File.Nodes) + 1)
	if err != nil {
		t.Fatalf("etcdtest: add node: %v", err)
	}
	if edit != nil {
		edit(&n)
	}
	c.File.Nodes = append(c.File.Nodes, n)
	if err := c.writeAndInit(); err != nil {
		t.Fatalf("etcdtest: add node %s: %v", n.Name, err)
	}
	return c.Member(n.Name)
}

// StartAll starts every member that is not running and waits until all
// answer a linearizable read.
func (c *Cluster) StartAll(ctx context.Context) error {
	for _, m := range c.members() {
		if m.Running() {
			continue
		}
		if err := m.Start(); err != nil {
			return err
		}
	}
	return c.WaitReady(ctx)
}

// WaitReady waits until every member answers a linearizable read through
// its own endpoint with the kube-apiserver's certificate. It returns as
// soon as one member fails for good (its process exited), rather than
// letting the others wait out ctx for a quorum that will not come.
func (c *Cluster) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ms := c.members()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if errs[i] = m.WaitReady(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// Report the members that failed, not the ones cancelled because of
	// them; if all were cancelled, ctx itself ended.
	var failed []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		failed = errs
	}
	return errors.Join(failed...)
}

// Member returns the member named name, or nil.
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.members() {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (c *Cluster) members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.Members...)
}

// Endpoints lists every member's client URL, in spec order.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members() {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// CAFile is the etcd CA certificate every member trusts.
func (c *Cluster) CAFile() string { return c.Paths.CACert() }

// TLSConfig returns a client TLS config that trusts caFile and presents
// certFile and keyFile, or no certificate when certFile is "". Like etcd's
// own clients, it reads the pair again at every handshake, so it follows a
// rotation; the trusted CAs are read once.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("load client pair %s: %w", certFile, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load client pair %s: %w", certFile, err)
			}
			return &pair, nil
		}
	}
	return cfg, nil
}

// APIServerTLS is the kube-apiserver's view: --etcd-cafile,
// --etcd-certfile and --etcd-keyfile from its bundle.
func (c *Cluster) APIServerTLS() *tls.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiTLS
}

// Client returns a client of the given endpoints (every member's when none
// are given) with the kube-apiserver's certificate, closed when the test
// ends.
func (c *Cluster) Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	return c.ClientTLS(t, c.APIServerTLS(), endpoints...)
}

// ClientTLS is Client with another TLS config (see TLSConfig).
func (c *Cluster) ClientTLS(t testing.TB, cfg *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := c.newClient(cfg, endpoints...)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *Cluster) newClient(cfg *tls.Config, endpoints ...string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         cfg,
		DialTimeout: 5 * time.Second,
		// The client logs every failed attempt; the tests report errors
		// themselves.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return cli, nil
}

// Leader returns the member that the running members agree is the leader.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	byID := map[uint64]*Member{}
	leaders := map[uint64]bool{}
	var errs []error
	for _, m := range c.members() {
		if !m.Running() {
			continue
		}
		st, err := m.status(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byID[st.Header.MemberId] = m
		if st.Leader != 0 {
			leaders[st.Leader] = true
		}
	}
	if len(leaders) != 1 {
		return nil, fmt.Errorf("no single leader (members name %d): %w", len(leaders), errors.Join(errs...))
	}
	var id uint64
	for l := range leaders {
		id = l
	}
	if m := byID[id]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("leader %x is not a running member of this cluster: %w", id, errors.Join(errs...))
}

// ID returns the member's etcd member id, asked from the member itself.
func (m *Member) ID(ctx context.Context) (uint64, error) {
	st, err := m.status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Header.MemberId, nil
}

func (m *Member) status(ctx context.Context) (*clientv3.StatusResponse, error) {
	cli, err := m.c.newClient(m.c.APIServerTLS(), m.ClientURL)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	st, err := cli.Status(ctx, m.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("status of member %s: %w", m.Name, err)
	}
	return st, nil
}

// Etcdctl runs the real etcdctl against every member's endpoint, trusting
// the etcd CA and presenting certFile and keyFile, and returns its
// combined output.
func (c *Cluster) Etcdctl(ctx context.Context, certFile, keyFile string, args ...string) (string, error) {
	full := []string{
		"--endpoints=" + strings.Join(c.Endpoints(), ","),
		"--cacert=" + c.CAFile(),
		"--cert=" + certFile,
		"--key=" + keyFile,
		"--dial-timeout=5s",
		"--command-timeout=10s",
	}
	cmd := exec.CommandContext(ctx, c.etcdctlBin, append(full, args...)...)
	cmd.Env = etcdEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("etcdctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// portTaken reports whether a member failed because its port was taken.
func (c *Cluster) portTaken() bool {
	for _, m := range c.members() {
		if strings.Contains(m.Log(), "address already in use") {
			return true
		}
	}
	return false
}

func (c *Cluster) killAll() {
	var wg sync.WaitGroup
	for _, m := range c.members() {
		wg.Go(func() { _ = m.Kill() })
	}
	wg.Wait()
}

// cleanup kills every member (no graceful stop: the data is thrown away)
// and, when the test failed, prints the members' logs.
func (c *Cluster) cleanup() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.ctl.Close()
	c.killAll()
	if !c.t.Failed() {
		return
	}
	for _, m := range c.members() {
		c.t.Logf("etcdtest: log of member %s (%s):\n%s", m.Name, m.ConfigFile, m.LogTail(tailLines))
	}
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
