package carotate_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/verify"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// caChildEnv makes the test binary run one `ca rotate` of the spec it
// names and exit, so a test can kill -9 a real CA rotation.
const caChildEnv = "ROTATE_TEST_CA_CHILD_SPEC"

// caChildNewEnv passes --new to the child.
const caChildNewEnv = "ROTATE_TEST_CA_CHILD_NEW"

// TestMain runs the child processes the kill tests start (see
// livetest.StartChild), or the tests. Tests that run on a cluster of their
// own call t.Parallel; those that set process-wide state (atomicdir.SetHook,
// SOFTHSM2_CONF) stay sequential, and Go runs those first.
func TestMain(m *testing.M) {
	if spec := os.Getenv(caChildEnv); spec != "" {
		os.Exit(caChild(spec))
	}
	os.Exit(m.Run())
}

func caChild(specPath string) int {
	s, err := cluster.Load(specPath, cluster.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = carotate.Run(context.Background(), pki.New(s), carotate.Options{Out: os.Stdout, New: os.Getenv(caChildNewEnv) != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestCARotate runs the CA rotation's acceptance scenarios on one real
// cluster: stage by stage with --until under load, then a second rotation
// killed once in each stage.
func TestCARotate(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	restarts := filepath.Join(t.TempDir(), "apiserver-restarts")
	// Members run from etcd.env, so the CRL (and a revocation made before
	// the rotation) is enforced throughout, and verify checks it.
	c := etcdtest.Start(t, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Certs.Validity = "2h"
		// kube-apiserver reads its --etcd-cafile only at start: its
		// restart template is what the rotation runs for it.
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: "echo restarted >> " + restarts})
	}})
	t.Run("StagesUnderLoad", func(t *testing.T) { testCAStagesUnderLoad(t, c, restarts) })
	t.Run("ResumesAfterKillInEachStage", func(t *testing.T) { testCAResumes(t, c) })
	t.Run("WaitsForClientsWithoutRestart", func(t *testing.T) { testCAWaitsForClients(t, c, restarts) })
	t.Run("PlainRotateAndAChangedCASet", func(t *testing.T) { testPlainRotateCASet(t, c) })
	t.Run("PlainRollForComparison", func(t *testing.T) { testPlainRoll(t, c) })
}

// apiTLS is what a freshly started kube-apiserver would use: its bundle's
// CA file, read now.
func apiTLS(t testing.TB, c *etcdtest.Cluster) *tls.Config {
	t.Helper()
	_, crt, key := etcdtest.APIServerFiles(c.Paths)
	cfg, err := etcdtest.TLSConfig(etcdtest.APIServerCA(c.Paths), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func caTerm(t testing.TB, c *etcdtest.Cluster) uint64 {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), apiTLS(t, c), 5*time.Second)
	l, ok := h.LeaderResult()
	if !ok || !h.Healthy() {
		t.Fatalf("cluster not healthy: %+v", h)
	}
	return l.Status.RaftTerm
}

func bundleCAs(t *testing.T, s *cluster.Spec) map[string][]*x509.Certificate {
	t.Helper()
	out := map[string][]*x509.Certificate{}
	for _, tg := range pki.New(s).Targets {
		certs, err := pki.BundleCAs(tg.CADir)
		if err != nil {
			t.Fatal(err)
		}
		out[tg.CADir] = certs
	}
	return out
}

// leavesFrom asserts which CA issued every leaf on disk.
func leavesFrom(t *testing.T, s *cluster.Spec, authority *x509.Certificate, what string) {
	t.Helper()
	for _, tg := range pki.New(s).Targets {
		b, err := os.ReadFile(tg.CertPath())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ca.ParseCert(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckSignatureFrom(authority); err != nil {
			t.Errorf("%s: not issued by the %s CA: %v", tg.ID, what, err)
		}
	}
}

func stage(t *testing.T, s *cluster.Spec) string {
	t.Helper()
	r, err := pki.ReadCARotation(pki.New(s))
	if err != nil {
		t.Fatal(err)
	}
	return r.Stage
}

func runCA(t *testing.T, s *cluster.Spec, o carotate.Options) *carotate.Result {
	t.Helper()
	res, _ := runCAEvents(t, s, o)
	return res
}

// runCAEvents runs ca rotate and returns its events too (the lines
// logged are the ones the CLI prints from them).
func runCAEvents(t *testing.T, s *cluster.Spec, o carotate.Options) (*carotate.Result, []runner.Event) {
	t.Helper()
	var out bytes.Buffer
	rec := &recorder.Recorder{Next: runner.TextReporter(&out)}
	o.Reporter = rec
	res, err := carotate.Run(context.Background(), pki.New(s), o)
	t.Logf("ca rotate --until %q:\n%s", o.Until, out.String())
	if err != nil {
		t.Fatalf("ca rotate --until %q: %v", o.Until, err)
	}
	return res, rec.Events()
}

// probeRefused reports whether a handshake presenting a probe certificate
// from authority is refused at addr.
func probeRefused(t *testing.T, authority *ca.CA, roots *x509.CertPool, addr string) error {
	t.Helper()
	pair, err := authority.ProbeClient(time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := probe.Dial(ctx, addr, probe.ClientConfig(roots, &pair))
	if err == nil {
		conn.Close()
	}
	return err
}

func testCAStagesUnderLoad(t *testing.T, c *etcdtest.Cluster, restarts string) {
	ctx := context.Background()
	s := c.Spec
	cli := c.Client(t)
	if _, err := cli.Put(ctx, "ca-rotation/marker", "before"); err != nil {
		t.Fatal(err)
	}
	oldCA, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	before := bundleCAs(t, s)
	// A revocation made before the rotation must survive it.
	if _, err := issue.RevokeSerials(ctx, pki.New(s), []pki.Revoked{{Serial: "c0ffee", Reason: "keyCompromise", When: time.Now()}}, issue.Options{}); err != nil {
		t.Fatal(err)
	}

	var dry bytes.Buffer
	if _, err := carotate.Run(ctx, pki.New(s), carotate.Options{DryRun: true, Out: &dry}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	t.Logf("dry run:\n%s", dry.String())
	for _, want := range []string{"1. prepare (to do)", "2. trust-both (to do)", "3. reissue (to do)", "4. finish (to do)", "client kube-apiserver: restart: echo restarted"} {
		if !strings.Contains(dry.String(), want) {
			t.Errorf("dry run does not say %q", want)
		}
	}
	if _, err := os.Stat(c.Paths.NextCADir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dry run created %s", c.Paths.NextCADir())
	}

	start := time.Now()
	ld := livetest.StartLoad(t, c)
	pids0, term0 := livetest.Pids(c), caTerm(t, c)

	// prepare: the next CA exists, nothing else changed.
	_, ev := runCAEvents(t, s, carotate.Options{Until: pki.CAStagePrepare})
	checkStageEvents(t, ev, pki.CAStagePrepare, nil)
	next, err := pki.LoadNextCA(pki.Paths{PKI: s.PKIDir})
	if err != nil || next == nil {
		t.Fatalf("no next CA after prepare: %v", err)
	}
	if info, err := os.Stat(filepath.Join(c.Paths.NextCADir(), "ca.key")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("next CA key: %v, mode %v; want 0400", err, info.Mode().Perm())
	}
	if got := stage(t, s); got != pki.CAStagePrepare {
		t.Errorf("stage after --until prepare: %q", got)
	}
	if !maps.EqualFunc(before, bundleCAs(t, s), func(a, b []*x509.Certificate) bool { return len(a) == 1 && len(b) == 1 && a[0].Equal(b[0]) }) {
		t.Error("prepare changed a bundle")
	}
	if !maps.Equal(pids0, livetest.Pids(c)) {
		t.Error("prepare restarted a member")
	}

	// trust-both: every bundle trusts both, every member restarted once,
	// one leader change, the apiserver restarted, leaves untouched.
	res, ev := runCAEvents(t, s, carotate.Options{Until: pki.CAStageTrustBoth})
	checkStageEvents(t, ev, pki.CAStageTrustBoth, memberNames(s))
	trust := res.Stages[len(res.Stages)-1]
	if trust.Stage != pki.CAStageTrustBoth || len(trust.Restarted) != 3 {
		t.Errorf("trust-both: stage %s restarted %d; want 3", trust.Stage, len(trust.Restarted))
	}
	for dir, certs := range bundleCAs(t, s) {
		if len(certs) != 2 || !certs[0].Equal(oldCA.Cert) || !certs[1].Equal(next.Cert) {
			t.Errorf("%s/ca.crt holds %d CAs, want the old and the new one", dir, len(certs))
		}
	}
	for name, pid := range pids0 {
		if c.Member(name).PID() == pid {
			t.Errorf("trust-both did not restart %s", name)
		}
	}
	livetest.CheckOneHandOff(t, "trust-both", len(trust.HandOffs), caTerm(t, c)-term0)
	if b, _ := os.ReadFile(restarts); strings.Count(string(b), "restarted") != 1 {
		t.Errorf("kube-apiserver restarted %d times in trust-both, want 1", strings.Count(string(b), "restarted"))
	}
	leavesFrom(t, s, oldCA.Cert, "old")
	if got := stage(t, s); got != pki.CAStageTrustBoth {
		t.Errorf("stage after --until trust-both: %q", got)
	}
	for _, n := range s.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, _ := probe.ParseEndpoint(u)
			if err := probeRefused(t, next, probe.CertPool([]*x509.Certificate{oldCA.Cert, next.Cert}), addr); err != nil {
				t.Errorf("%s refuses a client certificate from the new CA after trust-both: %v", addr, err)
			}
		}
	}
	// verify, as before an apiserver cutover, says where the rotation is.
	rep, err := verify.Evaluate(ctx, pki.New(c.Spec), verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rep.Checks {
		if ch.Name == verify.CheckCAFile && (ch.Status != verify.OK || !strings.Contains(ch.Reason, "CA rotation in progress, stage trust-both")) {
			t.Errorf("verify during trust-both: %s %s: %s", ch.Name, ch.Status, ch.Reason)
		}
	}
	if !rep.Passed {
		t.Errorf("verify does not pass during trust-both: %+v", rep.Checks)
	}
	// The load client read its CA file at start: restart it, as the
	// rotation restarted the apiserver.
	st1 := ld.Stop()
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	ld = livetest.StartLoad(t, c)

	// reissue: every leaf from the new CA, no restart, no leader change.
	pids1, term1 := livetest.Pids(c), caTerm(t, c)
	res, ev = runCAEvents(t, s, carotate.Options{Until: pki.CAStageReissue})
	checkStageEvents(t, ev, pki.CAStageReissue, memberNames(s))
	reissueTook := res.Stages[len(res.Stages)-1].Took
	if !maps.Equal(pids1, livetest.Pids(c)) {
		t.Error("reissue restarted a member")
	}
	if d := caTerm(t, c) - term1; d != 0 {
		t.Errorf("reissue: raft term went up by %d, want no leader change", d)
	}
	leavesFrom(t, s, next.Cert, "new")
	if got := stage(t, s); got != pki.CAStageReissue {
		t.Errorf("stage after --until reissue: %q", got)
	}
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Status != pki.StatusOK || in.Target != nil && in.Reason != "CA rotation in progress, stage reissue" {
			t.Errorf("certs list during reissue: %s: %s: %s", in.Name, in.Status, in.Reason)
		}
	}

	// finish: the new CA only, every member restarted once more, one
	// leader change, the old CA refused everywhere and retired.
	term2 := caTerm(t, c)
	res, ev = runCAEvents(t, s, carotate.Options{})
	checkStageEvents(t, ev, pki.CAStageFinish, memberNames(s))
	fin := res.Stages[len(res.Stages)-1]
	st2 := ld.Stop()
	if fin.Stage != pki.CAStageFinish || len(fin.Restarted) != 3 {
		t.Errorf("finish: stage %s restarted %d; want 3", fin.Stage, len(fin.Restarted))
	}
	livetest.CheckOneHandOff(t, "finish", len(fin.HandOffs), caTerm(t, c)-term2)
	for name, pid := range pids1 {
		if c.Member(name).PID() == pid {
			t.Errorf("finish did not restart %s", name)
		}
	}
	for dir, certs := range bundleCAs(t, s) {
		if len(certs) != 1 || !certs[0].Equal(next.Cert) {
			t.Errorf("%s/ca.crt does not hold the new CA alone", dir)
		}
	}
	if got := stage(t, s); got != "" {
		t.Errorf("stage after finish: %q, want none", got)
	}
	nowCA, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil || !nowCA.Cert.Equal(next.Cert) {
		t.Fatalf("PKI/etcd is not the new CA: %v", err)
	}
	if _, err := os.Stat(c.Paths.NextCADir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after finish", c.Paths.NextCADir())
	}
	backup := filepath.Join(c.Paths.Backups(), "ca-"+certx.Serial(oldCA.Cert))
	if info, err := os.Stat(filepath.Join(backup, "ca.key")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("old CA key not in %s with mode 0400: %v", backup, err)
	}
	// The old key is nowhere in the active PKI (backup/ aside).
	filepath.WalkDir(s.PKIDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && p == c.Paths.Backups() {
			return fs.SkipDir
		}
		if d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Equal(b, oldCA.KeyPEM) {
				t.Errorf("the old CA key is still at %s", p)
			}
		}
		return nil
	})
	leavesFrom(t, s, next.Cert, "new")
	newOnly := probe.CertPool([]*x509.Certificate{next.Cert})
	for _, n := range s.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, _ := probe.ParseEndpoint(u)
			err := probeRefused(t, oldCA, newOnly, addr)
			var pe *probe.Error
			if !errors.As(err, &pe) || pe.Kind != probe.KindClientCertRejected {
				t.Errorf("%s: a client certificate from the old CA: %v; want it refused", addr, err)
			}
			if cert, err := probe.ServingCert(context.Background(), addr, probe.ClientConfig(newOnly, nil)); err != nil {
				t.Errorf("%s does not serve a certificate from the new CA: %v", addr, err)
			} else if cert.CheckSignatureFrom(next.Cert) != nil {
				t.Errorf("%s serves a certificate not from the new CA", addr)
			}
		}
	}
	if b, _ := os.ReadFile(restarts); strings.Count(string(b), "restarted") != 2 {
		t.Errorf("kube-apiserver restarted %d times in all, want 2", strings.Count(string(b), "restarted"))
	}
	// Data intact, on every member.
	fresh := apiTLS(t, c)
	for _, ep := range c.Endpoints() {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: fresh, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := cl.Get(ctx, "ca-rotation/marker", clientv3.WithSerializable())
		cl.Close()
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "before" {
			t.Errorf("%s: marker: %v %v", ep, r, err)
		}
	}
	infos, err = pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Status != pki.StatusOK || in.Reason != "" {
			t.Errorf("certs list after finish: %s: %s: %s", in.Name, in.Status, in.Reason)
		}
	}

	// Failed requests: the loads ran through two rolling restarts, so
	// how many fail depends on the machine (see testRollsUnderLoad); they
	// are logged, and BenchmarkCARotate counts them. Every acknowledged
	// write of both loads reads back from every member, with the
	// apiserver's TLS as it is after the rotation.
	for i, ls := range []struct {
		st  livetest.LoadStats
		hos []runner.HandOff
	}{{st1, trust.HandOffs}, {st2, fin.HandOffs}} {
		dropped, other := livetest.Classify(windows(ls.hos), ls.st.Failures)
		t.Logf("load %d: %d requests, %d failed, %d inside the hand-off, worst %s", i+1, ls.st.Ops, ls.st.Fails, len(dropped), ls.st.Worst)
		if len(dropped)+len(other) > 0 {
			t.Logf("load %d FAILED: %d inside the hand-off, %d elsewhere:\n  %s", i+1, len(dropped), len(other), strings.Join(append(dropped, other...), "\n  "))
		}
	}
	livetest.CheckAcked(t, c, apiTLS(t, c), st1, st2)
	t.Logf("FIGURES ca rotate: total %s; trust-both %s, reissue %s, finish %s",
		time.Since(start).Round(time.Millisecond), trust.Took.Round(time.Millisecond), reissueTook.Round(time.Millisecond), fin.Took.Round(time.Millisecond))
	checkHealthyWith(t, c)
	newCA, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.LoadCRL(c.Paths)
	switch {
	case err != nil:
		t.Errorf("CRL after finish: %v", err)
	case !crl.Has("c0ffee"):
		t.Error("the revocation made before the CA rotation is gone from the CRL")
	case crl.List.CheckSignatureFrom(newCA.Cert) != nil:
		t.Error("the CRL is not signed by the new CA after finish")
	}
	for _, n := range s.Nodes {
		if got, want := livetest.ReadFile(t, c.Paths.NodeCRL(n.Name)), livetest.ReadFile(t, c.Paths.CRL()); got != want {
			t.Errorf("%s's CRL differs from the CA's after finish", n.Name)
		}
	}
	// Run again: the rotation is over, and nothing starts without --new.
	again := livetest.Pids(c)
	var out bytes.Buffer
	if _, err := carotate.Run(ctx, pki.New(s), carotate.Options{Out: &out}); err != nil || !strings.Contains(out.String(), "nothing to do: the CA rotation to") {
		t.Errorf("a finished rotation run again: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(c.Paths.NextCADir()); !errors.Is(err, fs.ErrNotExist) || !maps.Equal(again, livetest.Pids(c)) {
		t.Error("a finished rotation run again started another one")
	}
}

func checkHealthyWith(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	h := probe.Health(context.Background(), c.Endpoints(), apiTLS(t, c), 5*time.Second)
	if !h.Healthy() {
		for _, r := range h.Endpoints {
			t.Errorf("%s: healthy=%v %v", r.Endpoint, r.Healthy, r.Err())
		}
	}
}

// waitHealthy waits until the cluster answers with the apiserver's
// material as it is now on disk (a killed run may have left a member
// restarting under the harness).
func waitHealthy(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	livetest.WaitFor(t, time.Minute, func() bool {
		return probe.Health(context.Background(), c.Endpoints(), apiTLS(t, c), 2*time.Second).Healthy()
	})
}

// testCAResumes runs a second CA rotation as a real process and kills it
// once in each stage, right after the first member (or the new CA) is
// done; each next run resumes. Across all runs, every member goes through
// each restart stage exactly once: restarted, or found already running
// with its new bundle (the member a killed run was restarting).
func testCAResumes(t *testing.T, c *etcdtest.Cluster) {
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	killAt := []struct{ stage, marker string }{
		{pki.CAStagePrepare, "prepare: created the next CA"},
		{pki.CAStageTrustBoth, "[1/3]"},
		{pki.CAStageReissue, "reissue [1/3]"},
		{pki.CAStageFinish, "[1/3]"},
	}
	var all strings.Builder
	for i := 0; i <= len(killAt); i++ {
		env := []string{caChildEnv + "=" + c.SpecPath}
		if i == 0 {
			env = append(env, caChildNewEnv+"=1")
		}
		cmd, sc, stderr := livetest.StartChild(t, env...)
		current, killed := "", false
		for sc.Scan() {
			line := sc.Text()
			all.WriteString(line + "\n")
			for _, st := range pki.CAStages {
				if strings.Contains(line, " "+st+": ") || strings.Contains(line, " "+st+" [") {
					current = st
				}
			}
			if i < len(killAt) && current == killAt[i].stage && strings.Contains(line, killAt[i].marker) {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
		}
		err := cmd.Wait()
		all.WriteString(fmt.Sprintf("--- run %d ended: %v %s\n", i+1, err, stderr.String()))
		if i < len(killAt) && !killed {
			t.Fatalf("run %d was to be killed in stage %s but ended: %v\n%s", i+1, killAt[i].stage, err, all.String())
		}
		if i == len(killAt) && err != nil {
			t.Fatalf("last run: %v\n%s", err, all.String())
		}
		waitHealthy(t, c)
	}
	t.Logf("runs:\n%s", all.String())
	for _, st := range []string{pki.CAStageTrustBoth, pki.CAStageFinish} {
		for _, n := range c.Spec.Nodes {
			restarted := strings.Count(all.String(), n.Name+": restarted (CA rotation, stage "+st+":")
			already := strings.Count(all.String(), st+": "+n.Name+": already runs with its new bundle")
			if restarted > 1 || restarted+already != 1 {
				t.Errorf("stage %s: %s restarted %d times, found running with its new bundle %d times; want once in all", st, n.Name, restarted, already)
			}
		}
	}
	if got := stage(t, c.Spec); got != "" {
		t.Errorf("stage after the last run: %q", got)
	}
	checkHealthyWith(t, c)
}

// testPlainRotateCASet changes one member's CA set outside a CA rotation:
// a plain rotate with --restart=never restarts nothing and says, in one
// warning line, that the new trust is not in effect (exit 0); the default
// mode then restarts that member alone.
func testPlainRotateCASet(t *testing.T, c *etcdtest.Cluster) {
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	m := c.Members[1]
	livetest.AppendCA(t, c.Spec, m.Name)
	pidsBefore := livetest.Pids(c)
	var out bytes.Buffer
	if _, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{Restart: rotate.RestartNever, Out: &out}); err != nil {
		t.Fatalf("rotate --restart=never: %v\n%s", err, out.String())
	}
	t.Logf("rotate --restart=never:\n%s", out.String())
	if n := strings.Count(out.String(), "warning:"); n != 1 || !strings.Contains(out.String(), "warning: "+m.Name+": no restart (--restart=never) although CA bundle changed: the new trust is not in effect until the member restarts") {
		t.Errorf("want one warning line saying the new trust of %s is not in effect, got %d", m.Name, n)
	}
	if !maps.Equal(pidsBefore, livetest.Pids(c)) {
		t.Error("--restart=never restarted a member")
	}
	out.Reset()
	res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{Out: &out})
	t.Logf("rotate:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 1 || res.Members[0].Name != m.Name {
		t.Errorf("restarted %v, want %s alone", res.Members, m.Name)
	}
	for name, pid := range pidsBefore {
		if restarted := c.Member(name).PID() != pid; restarted != (name == m.Name) {
			t.Errorf("member %s: restarted %v", name, restarted)
		}
	}
	checkHealthyWith(t, c)
}

// testPlainRoll rolls the same cluster once with --restart=always under
// the same load, for docs/ca-rotate.md's comparison: a CA rotation costs two
// such rolls plus its proofs.
func testPlainRoll(t *testing.T, c *etcdtest.Cluster) {
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	ld := livetest.StartLoad(t, c)
	term := caTerm(t, c)
	var out bytes.Buffer
	res, err := rotate.Run(context.Background(), pki.New(c.Spec), rotate.Options{RenewBefore: livetest.EverythingDue, Restart: rotate.RestartAlways, Out: &out})
	st := ld.Stop()
	if err != nil {
		t.Fatalf("rotate --restart=always: %v\n%s", err, out.String())
	}
	if len(res.Members) != 3 {
		t.Errorf("restarted %d members, want 3", len(res.Members))
	}
	dropped, other := livetest.Classify(windows(res.HandOffs), st.Failures)
	t.Logf("FIGURES plain roll (--restart=always): %s, %d requests, %d failed (%d inside the hand-off), leader changes %d",
		res.Took.Round(time.Millisecond), st.Ops, st.Fails, len(dropped), caTerm(t, c)-term)
	if len(other) > 0 {
		t.Logf("FAILED outside the hand-off (a restart window on a busy machine):\n  %s", strings.Join(other, "\n  "))
	}
	livetest.CheckAcked(t, c, apiTLS(t, c), st)
	checkHealthyWith(t, c)
}

// testCAWaitsForClients rotates with a spec whose kube-apiserver has no
// restart template: after the members, trust-both stops with exit 0 and
// says what to restart where; a run without --clients-restarted still
// waits (and restarts no member again); --clients-restarted lets the stage
// end, and only that one stage.
func testCAWaitsForClients(t *testing.T, c *etcdtest.Cluster, restarts string) {
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	manual := *c.Spec
	manual.Clients = slices.Clone(c.Spec.Clients)
	for i := range manual.Clients {
		manual.Clients[i].Restart = ""
	}
	before, _ := os.ReadFile(restarts)
	res := runCA(t, &manual, carotate.Options{New: true})
	if len(res.WaitingForClients) != 1 || res.WaitingForClients[0] != cluster.ClientAPIServer || res.Stage != pki.CAStageTrustBoth {
		t.Fatalf("waiting for %v at stage %s; want kube-apiserver at trust-both", res.WaitingForClients, res.Stage)
	}
	if n := len(res.Stages[len(res.Stages)-1].Restarted); n != 3 {
		t.Errorf("trust-both restarted %d members before waiting, want 3", n)
	}
	p := livetest.Pids(c)
	var out bytes.Buffer
	res, err := carotate.Run(context.Background(), pki.New(&manual), carotate.Options{Out: &out})
	t.Logf("run without --clients-restarted:\n%s", out.String())
	if err != nil || len(res.WaitingForClients) != 1 {
		t.Fatalf("run without --clients-restarted: %v, waiting for %v", err, res.WaitingForClients)
	}
	if !strings.Contains(out.String(), "restart client kube-apiserver on its hosts now") {
		t.Error("the run does not say which client to restart")
	}
	if !maps.Equal(p, livetest.Pids(c)) {
		t.Error("a member was restarted again while the run waited for clients")
	}
	// --clients-restarted ends trust-both only: finish waits again.
	res = runCA(t, &manual, carotate.Options{ClientsRestarted: true})
	if len(res.WaitingForClients) != 1 || res.Stage != pki.CAStageFinish {
		t.Fatalf("with --clients-restarted: waiting for %v at stage %s; want kube-apiserver at finish", res.WaitingForClients, res.Stage)
	}
	res = runCA(t, &manual, carotate.Options{ClientsRestarted: true})
	if len(res.WaitingForClients) != 0 || res.Stage != "" {
		t.Fatalf("last run: waiting for %v at stage %q; want done", res.WaitingForClients, res.Stage)
	}
	if after, _ := os.ReadFile(restarts); !bytes.Equal(before, after) {
		t.Error("a restart template ran although the spec has none")
	}
	if err := c.ReloadAPIServerTLS(); err != nil {
		t.Fatal(err)
	}
	checkHealthyWith(t, c)
}

// windows are the run's leadership hand-offs, for livetest.Classify.
func windows(hs []runner.HandOff) []livetest.Window {
	var ws []livetest.Window
	for _, h := range hs {
		ws = append(ws, livetest.Window{Start: h.Start, Took: h.Took})
	}
	return ws
}
