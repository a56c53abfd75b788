package carotate

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// TestRetireCrashAtEveryStepConverges kills the last step of a CA
// rotation (the old CA to backup/, PKI/etcd switched to the new CA, the old
// version and PKI/etcd-next removed) at every filesystem step, then runs
// it again: each time PKI/etcd ends as the new CA with its key 0400, the
// old CA is in backup/ca-SERIAL with its key 0400, and the old key is
// nowhere else in the PKI directory. A crash before the switch leaves the
// old CA in effect; after it, the new one; never a mix.
func TestRetireCrashAtEveryStepConverges(t *testing.T) {
	steps := 0
	for n := 1; ; n++ {
		s := crashSpec(t)
		cr := newCARun(t, s)
		if _, err := cr.prepare(); err != nil {
			t.Fatal(err)
		}
		old, next := cr.rot.Old, cr.rot.Next
		// Every member proved the finish stage: only the retirement is left.
		cr.journal().Done[pki.CAStageFinish] = time.Now()
		if err := cr.save(); err != nil {
			t.Fatal(err)
		}
		stopped := crashpoint.RunUntilStep(t, n, cr.retire)
		if stopped == "" {
			steps = n - 1
			break
		}
		// What a crash left is a CA in effect, whole: the old one or the new one.
		in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
		if err != nil {
			t.Fatalf("killed at %s: PKI/etcd: %v", stopped, err)
		}
		if !in.Cert.Equal(old.Cert) && !in.Cert.Equal(next.Cert) {
			t.Fatalf("killed at %s: PKI/etcd holds neither CA", stopped)
		}
		rot, err := pki.ReadCARotation(pki.New(s))
		if err != nil {
			t.Fatalf("killed at %s: %v", stopped, err)
		}
		if !rot.InProgress() {
			// Only the removal of PKI/etcd-next itself was interrupted
			// after it took effect: the rotation is over.
			checkRetired(t, s, old.KeyPEM, next.CertPEM, stopped)
			continue
		}
		// The next run, as Run resumes it: the finish stage, proven in
		// the journal, goes straight to the retirement.
		again := newCARun(t, s)
		if rot.Stage != pki.CAStageFinish && rot.Stage != pki.CAStagePrepare {
			t.Fatalf("killed at %s: stage %q", stopped, rot.Stage)
		}
		if _, _, err := again.restartStage(context.Background(), pki.CAStageFinish, &StageResult{}); err != nil {
			t.Fatalf("killed at %s: next run: %v", stopped, err)
		}
		checkRetired(t, s, old.KeyPEM, next.CertPEM, stopped)
	}
	if steps < 5 {
		t.Fatalf("retire made only %d filesystem steps", steps)
	}
	t.Logf("retire: killed at each of %d steps, every next run converged", steps)
}

func checkRetired(t *testing.T, s *cluster.Spec, oldKey, nextCert []byte, stopped string) {
	t.Helper()
	p := pki.Paths{PKI: s.PKIDir}
	in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil || !bytes.Equal(in.CertPEM, nextCert) {
		t.Fatalf("killed at %s: PKI/etcd is not the new CA: %v", stopped, err)
	}
	if info, err := os.Stat(p.CAKey()); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("killed at %s: CA key mode: %v %v", stopped, info.Mode().Perm(), err)
	}
	if _, err := os.Stat(p.NextCADir()); err == nil {
		t.Errorf("killed at %s: %s still there", stopped, p.NextCADir())
	}
	found := false
	filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if b, _ := os.ReadFile(path); bytes.Equal(b, oldKey) {
			rel, _ := filepath.Rel(p.Backups(), path)
			if filepath.IsLocal(rel) && filepath.Base(path) == pki.CAKeyFile {
				found = true
				if info, _ := os.Stat(path); info.Mode().Perm() != 0o400 {
					t.Errorf("killed at %s: backup %s has mode %v", stopped, path, info.Mode().Perm())
				}
				return nil
			}
			t.Errorf("killed at %s: the old CA key is still at %s", stopped, path)
		}
		return nil
	})
	if !found {
		t.Errorf("killed at %s: the old CA key is not in %s", stopped, p.Backups())
	}
}

func crashSpec(t *testing.T) *cluster.Spec {
	t.Helper()
	s, err := cluster.Parse([]byte("name: crash\nlocal: true\nnodes:\n  - {name: etcd-1, ips: [127.0.0.1], restart: \"true\"}\n"), "", cluster.Options{PKIDir: filepath.Join(ramdir.TempDir(t), "pki")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func newCARun(t *testing.T, s *cluster.Spec) *caRun {
	t.Helper()
	ro := runner.Config{}
	ro.Defaults()
	st, err := runner.LoadState(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := pki.ReadCARotation(pki.New(s))
	if err != nil {
		t.Fatal(err)
	}
	return &caRun{o: Options{Now: time.Now}, r: &runner.Runner{Cfg: ro, Log: runner.NewLogger(io.Discard), Journal: st, Inv: pki.New(s)}, rot: rot, res: &Result{}, paths: pki.Paths{PKI: s.PKIDir}, inv: pki.New(s)}
}

// TestTrustBothBundlesCrashAtEveryStepConverge kills the trust-both
// stage's bundle writes (every bundle's ca.crt becomes old CA + new CA, in
// one batch) at every filesystem step. What a crash leaves is readable
// (each bundle holds the old CA alone, or both), the stage read from the
// files is prepare or trust-both, never another, and writing the bundles
// again, as the re-run does before any restart, leaves every bundle
// holding both CAs.
func TestTrustBothBundlesCrashAtEveryStepConverge(t *testing.T) {
	steps := 0
	for n := 1; ; n++ {
		s := crashSpec(t)
		cr := newCARun(t, s)
		if _, err := cr.prepare(); err != nil {
			t.Fatal(err)
		}
		both := cr.rot.BundlePEM(pki.CAStageTrustBoth)
		old := cr.rot.Old.CertPEM
		stopped := crashpoint.RunUntilStep(t, n, func() error { _, err := cr.writeBundles(both); return err })
		if stopped == "" {
			steps = n - 1
			break
		}
		for _, st := range cr.bundleStores() {
			d := st.Dir
			got, err := atomicdir.Read(d, pki.CAFile)
			if err != nil {
				t.Fatalf("killed at %s: %s: %v", stopped, d, err)
			}
			if !bytes.Equal(got, old) && !bytes.Equal(got, both) {
				t.Fatalf("killed at %s: %s/ca.crt holds neither the old CA nor both", stopped, d)
			}
		}
		rot, err := pki.ReadCARotation(pki.New(s))
		if err != nil {
			t.Fatalf("killed at %s: %v", stopped, err)
		}
		if rot.Stage != pki.CAStagePrepare && rot.Stage != pki.CAStageTrustBoth {
			t.Fatalf("killed at %s: stage %q, want prepare or trust-both", stopped, rot.Stage)
		}
		again := newCARun(t, s)
		if _, err := again.writeBundles(again.rot.BundlePEM(pki.CAStageTrustBoth)); err != nil {
			t.Fatalf("killed at %s: next run: %v", stopped, err)
		}
		for _, st := range cr.bundleStores() {
			d := st.Dir
			if got, _ := os.ReadFile(filepath.Join(d, pki.CAFile)); !bytes.Equal(got, both) {
				t.Errorf("killed at %s: after the next run %s/ca.crt does not hold both CAs", stopped, d)
			}
		}
		if rot, err := pki.ReadCARotation(pki.New(s)); err != nil || rot.Stage != pki.CAStageTrustBoth {
			t.Errorf("killed at %s: after the next run the stage is %v (%v), want trust-both", stopped, rot, err)
		}
	}
	if steps < 5 {
		t.Fatalf("the bundle writes made only %d filesystem steps", steps)
	}
	t.Logf("trust-both bundles: killed at each of %d steps, every next run converged", steps)
}
