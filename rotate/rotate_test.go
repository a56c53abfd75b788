package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// localSpec writes a two-node local spec and issues its PKI. Nothing
// listens on its ports: these tests never get to a restart.
func localSpec(t *testing.T) *cluster.Spec {
	t.Helper()
	dir := ramdir.TempDir(t)
	spec := `name: unit
pkiDir: pki
local: true
certs:
  validity: 2h
nodes:
  - {name: etcd-1, ips: [127.0.0.1], clientPort: 52479, peerPort: 52480, restart: "true"}
  - {name: etcd-2, ips: [127.0.0.2], clientPort: 52479, peerPort: 52480, restart: "true"}
`
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func dryRun(t *testing.T, s *cluster.Spec) *rotate.Plan {
	t.Helper()
	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{DryRun: true, Restart: rotate.RestartNever, Out: &out})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	return res.Plan
}

func TestExternalReplacementIsPlanned(t *testing.T) {
	s := localSpec(t)
	// The first run records what is on disk as in effect.
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Restart: rotate.RestartNever}); err != nil {
		t.Fatal(err)
	}
	if p := dryRun(t, s); !p.Empty() {
		t.Fatalf("fresh PKI has a plan: %+v", p)
	}
	ts, _ := pki.Select(pki.New(s).Targets, []string{"etcd-2/etcd-peer"})
	if _, err := issue.Renew(context.Background(), pki.New(s), ts, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	p := dryRun(t, s)
	if len(p.Due) != 0 {
		t.Errorf("renewed certificate is due: %v", p.Due)
	}
	if len(p.Nodes) != 1 || p.Nodes[0].Node.Name != "etcd-2" || !p.Nodes[0].Leaves {
		t.Fatalf("plan does not put exactly etcd-2's new leaf into effect: %+v", p.Nodes)
	}
	// A renewed leaf alone restarts nothing; under never it is proven.
	if np := p.Nodes[0]; np.Restart || !np.Prove {
		t.Errorf("etcd-2: restart %v (%v), prove %v; want no restart and a proof", np.Restart, np.Reasons, np.Prove)
	}
	if len(p.Clients) != 0 {
		t.Errorf("plan touches clients: %+v", p.Clients)
	}
}

func TestInvalidFilesAreRefused(t *testing.T) {
	s := localSpec(t)
	// A key that belongs to another certificate, as a botched manual
	// copy would leave it.
	p := pki.Paths{PKI: s.PKIDir}
	crt, _ := etcdtest.NodePair(p, "etcd-1", "server")
	_, otherKey := etcdtest.NodePair(p, "etcd-2", "server")
	key, err := os.ReadFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := filepath.EvalSymlinks(crt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(cur), "server.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(crt)
	_, err = rotate.Run(context.Background(), pki.New(s), rotate.Options{RenewBefore: 87600 * time.Hour, Restart: rotate.RestartNever})
	var ie *input.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "etcd-1/etcd-server") || !strings.HasSuffix(err.Error(), "with: etcdpki certs renew etcd-1/etcd-server") {
		t.Fatalf("got %v, want an input error naming etcd-1/etcd-server", err)
	}
	if after, _ := os.ReadFile(crt); !bytes.Equal(before, after) {
		t.Error("the certificate was replaced although the run was refused")
	}
}

func TestLockKeepsRunsApart(t *testing.T) {
	s := localSpec(t)
	// Another process holding the flock is simulated by a second open
	// file description in this one: flock locks are per description.
	holder, err := runner.Lock(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rotate.Run(context.Background(), pki.New(s), rotate.Options{Restart: rotate.RestartNever})
	if !errors.Is(err, runner.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	holder.Release()
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Restart: rotate.RestartNever}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestCorruptJournalIsNamed(t *testing.T) {
	s := localSpec(t)
	path := filepath.Join(s.PKIDir, runner.StateFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Restart: rotate.RestartNever})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
}

func TestNodeAddedToSpecGetsCertificates(t *testing.T) {
	s := localSpec(t)
	data, err := os.ReadFile(s.File)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("  - {name: etcd-3, ips: [127.0.0.3], clientPort: 52479, peerPort: 52480, restart: \"true\"}\n")...)
	if err := os.WriteFile(s.File, data, 0o600); err != nil {
		t.Fatal(err)
	}
	grown, err := cluster.Load(s.File, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// The default restart mode: nothing is restarted (nothing listens on
	// these ports), because the new node's certificates are not in use.
	if _, err := rotate.Run(context.Background(), pki.New(grown), rotate.Options{Out: &out}); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "issued 3 missing certificates") {
		t.Errorf("output does not say the certificates were issued:\n%s", out.String())
	}
	crt, _ := etcdtest.NodePair(pki.Paths{PKI: grown.PKIDir}, "etcd-3", "peer")
	if _, err := os.Stat(crt); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(pki.Paths{PKI: grown.PKIDir}.NodeConfig("etcd-3")); err != nil {
		t.Errorf("the new node has no etcd.conf.yml: %v", err)
	}
	if p := dryRun(t, grown); !p.Empty() {
		t.Errorf("after issuing, the plan is not empty: %+v", p)
	}
}

func TestDryRunWarnsOnce(t *testing.T) {
	s := localSpec(t)
	var out bytes.Buffer
	// Half a year before the CA ends: rotate renews leaves only and warns.
	later := func() time.Time { return time.Now().AddDate(9, 6, 0) }
	res, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{DryRun: true, Now: later, Restart: rotate.RestartNever, Out: &out})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	if len(res.Plan.Warnings) == 0 {
		t.Fatalf("no warning about the CA:\n%s", out.String())
	}
	for _, w := range res.Plan.Warnings {
		if n := strings.Count(out.String(), w); n != 1 {
			t.Errorf("warning %q printed %d times, want once:\n%s", w, n, out.String())
		}
	}
}

// The first run records what each member was started with; a later
// change to a node's CA bundle or to what etcd reads in its config makes
// the default mode restart that member and no other, and the dry run
// says why for every member.
func TestStartOnlyFilesDecideRestarts(t *testing.T) {
	s := localSpec(t)
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Restart: rotate.RestartNever}); err != nil {
		t.Fatal(err)
	}
	st, err := runner.LoadState(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Started) != 2 || st.Started["etcd-1"].CA == "" || st.Started["etcd-1"].Config == "" {
		t.Fatalf("first run did not record what the members run with: %+v", st.Started)
	}

	// init rewrites initial-cluster on every member when a node is added:
	// etcd reads it only to bootstrap, so that is no reason to restart.
	cfgPath := pki.Paths{PKI: s.PKIDir}.NodeConfig("etcd-2")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bootstrapOnly := strings.Replace(string(cfg), "initial-cluster-state: new", "initial-cluster-state: existing", 1)
	if bootstrapOnly == string(cfg) {
		t.Fatalf("config has no initial-cluster-state: new:\n%s", cfg)
	}
	if err := os.WriteFile(cfgPath, []byte("# edited\n"+bootstrapOnly), 0o600); err != nil {
		t.Fatal(err)
	}
	if p := dryRun(t, s); !p.Empty() {
		t.Errorf("a change to initial-* keys and comments only makes a plan: %+v", p.Nodes)
	}

	livetest.AppendCA(t, s, "etcd-1")
	if err := os.WriteFile(cfgPath, []byte(bootstrapOnly+"snapshot-count: 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{DryRun: true, Out: &out})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	t.Logf("dry run:\n%s", out.String())
	want := map[string]string{"etcd-1": "CA bundle changed", "etcd-2": "config changed"}
	if len(res.Plan.Nodes) != 2 {
		t.Fatalf("plan has %d nodes, want 2", len(res.Plan.Nodes))
	}
	for _, np := range res.Plan.Nodes {
		if !np.Restart || !slices.Equal(np.Reasons, []string{want[np.Node.Name]}) || np.Prove || len(np.Targets) != 0 {
			t.Errorf("%s: restart %v for %v (prove %v, targets %v); want a restart for %q only", np.Node.Name, np.Restart, np.Reasons, np.Prove, pki.IDs(np.Targets), want[np.Node.Name])
		}
		if line := np.Node.Name + ": restart: " + want[np.Node.Name]; !strings.Contains(out.String(), line) {
			t.Errorf("dry run does not say %q", line)
		}
	}
	// Under never nothing restarts, and the run says what is left.
	out.Reset()
	res, err = rotate.Run(context.Background(), pki.New(s), rotate.Options{DryRun: true, Restart: rotate.RestartNever, NoVerify: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Plan.Order); n != 0 || !strings.Contains(out.String(), "etcd-1: no restart (--restart=never) although CA bundle changed") {
		t.Errorf("--restart=never: %d restarts; output:\n%s", n, out.String())
	}
}

// --no-verify is for --restart=never only; both mistakes are input errors
// (exit 2) that change nothing.
func TestRestartFlagsAreChecked(t *testing.T) {
	s := localSpec(t)
	for _, o := range []rotate.Options{
		{NoVerify: true},
		{NoVerify: true, Restart: rotate.RestartAlways},
		{Restart: "sometimes"},
	} {
		_, err := rotate.Run(context.Background(), pki.New(s), o)
		var ie *input.Error
		if !errors.As(err, &ie) {
			t.Errorf("restart %q no-verify %v: got %v, want an input error", o.Restart, o.NoVerify, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.PKIDir, runner.StateFile)); err == nil {
		t.Error("a refused run wrote the journal")
	}
}
