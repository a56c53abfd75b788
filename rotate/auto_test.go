package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// shortValidity makes the harness's leaves expire about 35 s after init:
// a validity counts from the moment of issue (notAfter = now + validity).
const shortValidity = "35s"

// TestRotateWithoutRestart is the default mode on one real cluster whose
// original leaves expire about half a minute after the rotation: no
// member restarts, no request fails, and the cluster outlives its old
// certificates on the connections it already had.
func TestRotateWithoutRestart(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := startExpiring(t, 10*time.Second, func(f *etcdtest.SpecFile) { f.Certs.Validity = shortValidity })
	// The renewed leaves get a normal life: this run's spec, as an
	// operator who lengthened the validity would have it.
	spec := *c.Spec
	spec.Leaf.Validity = 2 * time.Hour
	t.Run("ProvesUnderLoadAndOutlivesTheOldCerts", func(t *testing.T) { testProvesUnderLoad(t, c, &spec) })
	t.Run("RestartedMemberRejoinsWithNewCerts", func(t *testing.T) { testRejoins(t, c, &spec) })
	t.Run("CABundleChangeRestartsThatMember", func(t *testing.T) { testCABundleChange(t, c, &spec) })
}

func testProvesUnderLoad(t *testing.T, c *etcdtest.Cluster, spec *cluster.Spec) {
	ctx := context.Background()
	before := livetest.Serials(t, spec)
	oldExpiry := earliestExpiry(t, spec)
	var plan bytes.Buffer
	if _, err := rotate.Run(ctx, pki.New(spec), rotate.Options{DryRun: true, Out: &plan}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	t.Logf("dry run:\n%s", plan.String())
	for _, n := range spec.Nodes {
		if line := n.Name + ": no restart: etcd loads renewed leaves at its next handshake"; !strings.Contains(plan.String(), line) {
			t.Errorf("dry run does not say %q", line)
		}
	}
	termBefore := livetest.RaftTerm(t, c)
	pidsBefore := livetest.Pids(c)
	if left := time.Until(oldExpiry); left < 5*time.Second {
		t.Fatalf("the original certificates expire in %s, before the rotation could be shown to outlive them", left)
	}
	ld := livetest.StartLoad(t, c)
	var out bytes.Buffer
	// The recorder passes every event on to the text the CLI prints, so
	// the lines below are checked as the operator sees them.
	rec := &recorder.Recorder{Next: runner.TextReporter(&out)}
	res, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Reporter: rec})
	t.Logf("rotate output:\n%s", out.String())
	if err != nil {
		ld.Stop()
		t.Fatalf("rotate: %v", err)
	}
	t.Logf("rotation took %s, proofs %s; the original certificates expire at %s, in %s",
		res.Took.Round(time.Millisecond), res.ProofTime().Round(time.Millisecond), oldExpiry.Format("15:04:05"), time.Until(oldExpiry).Round(time.Second))
	// The load runs on, over connections opened with the old
	// certificates, until they have expired.
	for time.Now().Before(oldExpiry.Add(3 * time.Second)) {
		time.Sleep(200 * time.Millisecond)
	}
	st := ld.Stop()
	t.Logf("load: %d requests in %s (%.0f/s), %d failed, worst latency %s", st.Ops, st.Took.Round(time.Millisecond), float64(st.Ops)/st.Took.Seconds(), st.Fails, st.Worst)
	for _, f := range st.Failures {
		t.Errorf("failed request: %s", f)
	}
	livetest.CheckAcked(t, c, c.APIServerTLS(), st)
	if len(res.Members) != 0 || len(res.HandOffs) != 0 {
		t.Errorf("restarted %d members with %d hand-offs; want none", len(res.Members), len(res.HandOffs))
	}
	if !maps.Equal(livetest.Pids(c), pidsBefore) {
		t.Errorf("member pids changed from %v to %v: a member was restarted", pidsBefore, livetest.Pids(c))
	}
	if term := livetest.RaftTerm(t, c); term != termBefore {
		t.Errorf("raft term went from %d to %d: the leader changed", termBefore, term)
	}
	after := livetest.Serials(t, spec)
	for id, s := range after {
		if before[id] == s {
			t.Errorf("certificate %s was not renewed", id)
		}
	}
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
	if len(res.Proofs) != len(spec.Nodes) {
		t.Errorf("%d members proven, want %d", len(res.Proofs), len(spec.Nodes))
	}
	journal, err := runner.LoadState(spec.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range spec.Nodes {
		line := fmt.Sprintf("[%d/%d] %s: in effect without restart: client port serves ", i+1, len(spec.Nodes), n.Name)
		if !strings.Contains(out.String(), line) {
			t.Errorf("output has no line %q", line)
		}
		pr := journal.Proofs[n.Name]
		if pr.ServerSerial != after[n.Name+"/etcd-server"] || pr.PeerSerial != after[n.Name+"/etcd-peer"] || pr.AcceptedBy == "" || pr.AcceptedBy == n.Name {
			t.Errorf("journal's proof of %s is %+v; want the new serials, accepted by another member", n.Name, pr)
		}
	}
	checkRotateEvents(t, rec.Events(), spec, before, after)
	if !time.Now().After(oldExpiry) {
		t.Fatal("the original certificates have not expired yet")
	}
	for _, m := range c.Members {
		for _, bad := range []string{"expired certificate", "certificate has expired", "bad certificate"} {
			if strings.Contains(m.Log(), bad) {
				t.Errorf("member %s logged %q:\n%s", m.Name, bad, m.LogTail(40))
			}
		}
	}
	// A second run finds everything in effect: no proof, no restart.
	out.Reset()
	res, err = rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out})
	if err != nil || len(res.Proofs)+len(res.Members) != 0 || !strings.Contains(out.String(), "nothing due") {
		t.Errorf("second run: %v, %d proofs, %d restarts:\n%s", err, len(res.Proofs), len(res.Members), out.String())
	}
}

// testRejoins restarts a member after its original certificates expired:
// it can only rejoin with the renewed ones.
func testRejoins(t *testing.T, c *etcdtest.Cluster, spec *cluster.Spec) {
	m := c.Members[1]
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
	if now, exp := time.Now(), earliestExpiry(t, spec); !now.Before(exp) {
		t.Errorf("a certificate on disk expired at %s", exp)
	}
}

// testCABundleChange changes the CA bundle of one member (a second CA
// appended, as the first stage of a CA rotation does): etcd reads it only
// at start, so the default mode restarts that member, and only it.
func testCABundleChange(t *testing.T, c *etcdtest.Cluster, spec *cluster.Spec) {
	ctx := context.Background()
	m := c.Members[2]
	livetest.AppendCA(t, spec, m.Name)
	var plan bytes.Buffer
	if _, err := rotate.Run(ctx, pki.New(spec), rotate.Options{DryRun: true, Out: &plan}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	t.Logf("dry run:\n%s", plan.String())
	if !strings.Contains(plan.String(), m.Name+": restart: CA bundle changed") {
		t.Errorf("dry run does not say %s restarts for its CA bundle", m.Name)
	}
	pidsBefore := livetest.Pids(c)
	var out bytes.Buffer
	// The recorder passes every event on to the text the CLI prints, so
	// the lines below are checked as the operator sees them.
	rec := &recorder.Recorder{Next: runner.TextReporter(&out)}
	res, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Reporter: rec})
	t.Logf("rotate output:\n%s", out.String())
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if len(res.Members) != 1 || res.Members[0].Name != m.Name || len(res.Renewed) != 0 {
		t.Fatalf("restarted %v and renewed %d; want %s alone and nothing renewed", res.Members, len(res.Renewed), m.Name)
	}
	if !strings.Contains(out.String(), m.Name+": restarted (CA bundle changed)") {
		t.Errorf("output does not say why %s restarted", m.Name)
	}
	for name, pid := range pidsBefore {
		if restarted := c.Member(name).PID() != pid; restarted != (name == m.Name) {
			t.Errorf("member %s: restarted %v", name, restarted)
		}
	}
	livetest.CheckHealthy(t, c)
	// The journal knows what it runs with now: the next run has nothing to do.
	out.Reset()
	res, err = rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out})
	if err != nil || len(res.Members) != 0 || !strings.Contains(out.String(), "nothing due") {
		t.Errorf("next run: %v, %d restarts:\n%s", err, len(res.Members), out.String())
	}
}

// TestProofFailsWhenTheDeployMissesAMember runs members from directories
// of their own (as on real hosts), filled by each node's deploy command.
// When one node's deploy does nothing, its member keeps serving the old
// certificate: rotate exits 1 naming that member, the port, and both
// serials, and restarts nothing. With the deploy fixed, the next run
// resumes with that member and does not prove the first one again.
func TestProofFailsWhenTheDeployMissesAMember(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	hosts := t.TempDir()
	c := etcdtest.New(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		f.Local = false
		for i := range f.Nodes {
			host := filepath.Join(hosts, f.Nodes[i].Name)
			f.Nodes[i].Dir = filepath.Join(host, "pki")
			f.Nodes[i].DataDir = filepath.Join(host, "data")
			f.Nodes[i].Deploy = "mkdir -p {{.Dir}} && cp -a {{.Bundle}}/. {{.Dir}}/"
		}
	}})
	paths := pki.Paths{PKI: c.Spec.PKIDir}
	for _, n := range c.Spec.Nodes {
		// What an operator does once after init: copy each bundle to its host.
		data := cluster.TemplateData{Name: n.Name, Bundle: paths.NodeDir(n.Name), Dir: n.Dir}
		cmd, err := cluster.RenderTemplate(n.Deploy, data)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := runShell(cmd); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	broken := *c.Spec
	broken.Nodes = slices.Clone(c.Spec.Nodes)
	victim := &broken.Nodes[1]
	victim.Deploy = "true"
	old := livetest.Serials(t, c.Spec)
	pidsBefore := livetest.Pids(c)

	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(&broken), rotate.Options{RenewBefore: livetest.EverythingDue, Out: &out})
	t.Logf("rotate output:\n%s", out.String())
	var pe *runner.ProofError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a ProofError", err)
	}
	t.Logf("error: %v", err)
	_, clientAddr, _ := strings.Cut(victim.ClientURLs[0], "://")
	renewed := livetest.Serials(t, c.Spec)
	if pe.Member != victim.Name || pe.Port != "client port "+clientAddr || pe.ExitCode() != 1 ||
		pe.Want != renewed[victim.Name+"/etcd-server"] || pe.Got != old[victim.Name+"/etcd-server"] {
		t.Errorf("ProofError %+v: want member %s, client port %s, serial wanted %s, served %s", pe, victim.Name, clientAddr,
			renewed[victim.Name+"/etcd-server"], old[victim.Name+"/etcd-server"])
	}
	for _, want := range []string{victim.Name, clientAddr, pe.Want, pe.Got, "deploy did not reach the host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if len(res.Proofs) != 1 || res.Proofs[0].Name != c.Spec.Nodes[0].Name {
		t.Errorf("proven before the failure: %v; want %s alone (spec order)", res.Proofs, c.Spec.Nodes[0].Name)
	}
	if !maps.Equal(livetest.Pids(c), pidsBefore) {
		t.Error("a member was restarted")
	}

	out.Reset()
	res, err = rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{Out: &out})
	t.Logf("next run, deploy fixed:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	var proven []string
	for _, p := range res.Proofs {
		proven = append(proven, p.Name)
	}
	if want := []string{c.Spec.Nodes[1].Name, c.Spec.Nodes[2].Name}; !slices.Equal(proven, want) || len(res.Renewed) != 0 || len(res.Members) != 0 {
		t.Errorf("next run proved %v, renewed %d, restarted %d; want %v, 0, 0", proven, len(res.Renewed), len(res.Members), want)
	}
	livetest.CheckServing(t, c)
	livetest.CheckHealthy(t, c)
}

// earliestExpiry is when the first of the spec's certificates expires.
func earliestExpiry(t *testing.T, s *cluster.Spec) time.Time {
	t.Helper()
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, in := range infos {
		if in.Target != nil && (first.IsZero() || in.Expires.Before(first)) {
			first = in.Expires
		}
	}
	return first
}

func runShell(command string) ([]byte, error) {
	return exec.Command("/bin/sh", "-c", command).CombinedOutput()
}
