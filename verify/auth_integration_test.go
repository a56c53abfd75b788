package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// withBackupClient turns auth on in the spec and gives the extra client
// backup readwrite on /backup/ and read on the key /config/leader.
func withBackupClient(f *etcdtest.SpecFile) {
	on := true
	f.Auth.Enabled = &on
	f.Clients = append(f.Clients, cluster.FileClient{Name: "backup", Permissions: []cluster.FilePermission{
		{Prefix: "/backup/", Access: "readwrite"}, {Key: "/config/leader", Access: "read"},
	}})
}

// rootClient is a client as etcd's root user, minted in memory from the
// cluster's CA as verify does.
func rootClient(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	authority, err := pki.LoadCA(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := etcdauth.RootClientTLS(authority, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.ClientTLS(t, cfg)
}

// rowFor is the report's row named name for target, failing t if none.
func rowFor(t *testing.T, rep *Report, name, target string) Check {
	t.Helper()
	c, ok := rep.find(name, target)
	if !ok {
		t.Fatalf("no %s row for %s in %+v", name, target, rep.Checks)
	}
	return c
}

func checkRow(t *testing.T, rep *Report, name, target string, st Status, reason ...string) {
	t.Helper()
	c := rowFor(t, rep, name, target)
	if c.Status != st {
		t.Errorf("%s %s: %s %q, want %s", name, target, c.Status, c.Reason, st)
	}
	for _, r := range reason {
		if !strings.Contains(c.Reason, r) {
			t.Errorf("%s %s: %q lacks %q", name, target, c.Reason, r)
		}
	}
}

// TestVerifyWarnsWhenAuthIsOff: a cluster with auth off passes with a
// warning that names the risk (and fails under --strict); when the spec
// turns auth on, the warning says to apply it.
func TestVerifyWarnsWhenAuthIsOff(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: "authoff", Members: 1})
	rep, out, err := runVerify(t, pki.New(c.Spec), Options{})
	assertReport(t, rep, out, err, want{pass: true, check: CheckAuth, st: Warn, target: "cluster",
		reason: []string{AuthOffRisk, "set auth.enabled: true in the spec and run etcdpki auth apply"}})
	if !strings.Contains(out, "reads every Kubernetes Secret") {
		t.Errorf("the table does not name the risk:\n%s", out)
	}
	rep, out, err = runVerify(t, pki.New(c.Spec), Options{Strict: true})
	assertReport(t, rep, out, err, want{pass: false, check: CheckAuth, st: Fail, target: "cluster", reason: []string{AuthOffRisk, "(--strict)"}})

	s := *c.Spec
	s.Auth.Enabled = true
	rep, out, err = runVerify(t, pki.New(&s), Options{})
	assertReport(t, rep, out, err, want{pass: true, check: CheckAuth, st: Warn, target: "cluster",
		reason: []string{AuthOffRisk, "the spec turns it on: run etcdpki auth apply"}})
}

// TestVerifyComparesEachCertificatesGrants: with auth applied as the
// spec says, every certificate's row is ok; then the cluster's access
// control is changed behind etcdpki's back, one change per row, and
// verify names each one: a user with more than the spec grants, a
// node's name with a user, the apiserver with the root role, a client
// with no user, a client lacking a grant. Without the CA it cannot
// read the grants, and says so as a warning.
func TestVerifyComparesEachCertificatesGrants(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Name: "authon", Edit: withBackupClient})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := rootClient(t, c)
	if _, err := etcdauth.Sync(ctx, root, c.Spec); err != nil {
		t.Fatal(err)
	}
	inv := pki.New(c.Spec)
	api, hc := ca.KindAPIServer.CommonName, ca.KindHealthcheck.CommonName
	node1, node2 := etcdtest.NodeName(1), etcdtest.NodeName(2)

	rep, out, err := runVerify(t, inv, Options{Strict: true})
	assertReport(t, rep, out, err, want{pass: true, check: CheckAuth, st: OK, target: "cluster", reason: []string{"auth is on"}})
	checkRow(t, rep, CheckGrants, api, OK, `exactly the spec's grants: readwrite on prefix "/registry/"`, "(apiserver-etcd-client)")
	checkRow(t, rep, CheckGrants, "backup", OK, `readwrite on prefix "/backup/"`, `read on key "/config/leader"`, "(client/backup)")
	checkRow(t, rep, CheckGrants, hc, OK, "no etcd user", "etcd-1/etcd-healthcheck-client")
	checkRow(t, rep, CheckGrants, node1, OK, "no etcd user, as the spec wants: refused as a client", "etcd-1/etcd-server, etcd-1/etcd-peer")

	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	noPass := &clientv3.UserAddOptions{NoPassword: true}
	// Someone gives the healthcheck's CN a read of the Secrets.
	must(root.RoleAdd(ctx, "probe-reader"))
	must(root.RoleGrantPermission(ctx, "probe-reader", "/registry/secrets/", clientv3.GetPrefixRangeEnd("/registry/secrets/"), clientv3.PermissionType(clientv3.PermRead)))
	must(root.UserAddWithOptions(ctx, hc, "", noPass))
	must(root.UserGrantRole(ctx, hc, "probe-reader"))
	// A user named after a node, and the apiserver made root.
	must(root.UserAddWithOptions(ctx, node2, "", noPass))
	must(root.UserGrantRole(ctx, api, cluster.RootUser))
	// backup's user deleted; then a spec that gives backup a grant more.
	must(root.UserDelete(ctx, "backup"))

	rep, out, err = runVerify(t, inv, Options{})
	assertReport(t, rep, out, err, want{pass: false, check: CheckGrants, st: Fail, target: hc,
		reason: []string{`more than the spec grants: read on prefix "/registry/secrets/"`}})
	checkRow(t, rep, CheckGrants, node2, Fail, "a node's name has an etcd user", "etcd-2/etcd-server, etcd-2/etcd-peer")
	checkRow(t, rep, CheckGrants, api, Fail, "holds etcd's root role")
	checkRow(t, rep, CheckGrants, "backup", Fail, "no etcd user: etcd refuses its every request", `readwrite on prefix "/backup/"`)
	checkRow(t, rep, CheckGrants, node1, OK, "no etcd user")

	// Undone by hand: Sync leaves a role it does not own, and a user
	// with no role, alone.
	must(root.RoleDelete(ctx, "probe-reader"))
	must(root.UserDelete(ctx, hc))
	must(root.UserDelete(ctx, node2))
	s := *c.Spec
	s.Clients = append([]cluster.Client(nil), c.Spec.Clients...)
	s.Clients = append(s.Clients, cluster.Client{Name: "metrics", CommonName: "metrics", Permissions: []cluster.Permission{{Key: "/metrics/", Prefix: true, Access: cluster.AccessRead}}})
	if _, err := etcdauth.Sync(ctx, root, &s); err != nil {
		t.Fatal(err)
	}
	must(root.RoleRevokePermission(ctx, etcdauth.RoleFor("metrics"), "/metrics/", clientv3.GetPrefixRangeEnd("/metrics/")))
	rep, out, err = runVerify(t, pki.New(&s), Options{})
	assertReport(t, rep, out, err, want{pass: true, check: CheckGrants, st: Warn, target: "metrics",
		reason: []string{`lacks what the spec grants: read on prefix "/metrics/"; run etcdpki auth apply`}})
	checkRow(t, rep, CheckGrants, hc, OK, "no etcd user")
	checkRow(t, rep, CheckGrants, api, OK, "exactly the spec's grants")

	// Where the CA is not (a spec whose PKI directory is elsewhere, and
	// the apiserver's files given as flags, as on an apiserver host),
	// verify cannot read the users and roles: a warning, not a failure
	// of its own.
	away := s
	away.PKIDir = t.TempDir()
	_, apiCrt, apiKey := etcdtest.APIServerFiles(c.Paths)
	rep, out, err = runVerify(t, pki.New(&away), Options{CAFile: etcdtest.APIServerCA(c.Paths), CertFile: apiCrt, KeyFile: apiKey})
	if !errors.Is(err, ErrChecksFailed) {
		t.Fatalf("verify without the CA: %v, want the ca-key check's failure", err)
	}
	checkRow(t, rep, CheckAuth, "cluster", OK, "auth is on", "CN "+api)
	checkRow(t, rep, CheckGrants, "cluster", Warn, "auth state not readable without root")
	if _, ok := rep.find(CheckGrants, api); ok {
		t.Errorf("a grants row for %s without root", api)
	}
	if !strings.Contains(out, "auth state not readable without root") {
		t.Errorf("the table lacks the warning:\n%s", out)
	}
}
