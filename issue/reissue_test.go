package issue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/pki"
)

// expiredCATree issues threeNodes with a CA and leaves that live two
// seconds, waits until they have expired, and returns the spec to recover
// with: the same cluster with a normal CA and leaf validity (a new CA is
// made from the spec's settings).
func expiredCATree(t *testing.T) (*cluster.Spec, []byte) {
	t.Helper()
	short := strings.Replace(threeNodes, "certs:\n  validity: 365d", "ca:\n  validity: 2s\ncerts:\n  validity: 2s\n  renewBefore: 1s", 1)
	s, _ := initTree(t, short)
	oldCA := mustRead(t, pki.Paths{PKI: s.PKIDir}.CACert())
	time.Sleep(3 * time.Second) // past both: certificates store whole seconds
	return spec(t, threeNodes, s.PKIDir), oldCA
}

// TestReissueReplacesAnExpiredCA: with the CA expired, Reissue makes a
// new one, re-issues every certificate from it, rewrites every bundle's
// ca.crt, and keeps the old CA (key included) in the backup.
func TestReissueReplacesAnExpiredCA(t *testing.T) {
	s, oldCA := expiredCATree(t)
	caExpired, targets, _, err := ReissueNeeds(pki.New(s), time.Now())
	if err != nil || caExpired.IsZero() || len(targets) != len(pki.New(s).Targets) {
		t.Fatalf("ReissueNeeds: CA expired %v, %d of %d targets, %v; want the CA expired and every target", caExpired, len(targets), len(pki.New(s).Targets), err)
	}
	out, err := Reissue(context.Background(), pki.New(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	if out.NewCA == nil || bytes.Equal(mustRead(t, p.CACert()), oldCA) || len(out.Renewed) != len(pki.New(s).Targets) {
		t.Fatalf("new CA %v, %d renewed; want a new CA on disk and every target renewed", out.NewCA != nil, len(out.Renewed))
	}
	checkConverged(t, s, "none")
	backups, err := filepath.Glob(filepath.Join(p.Backups(), "*", "etcd", "ca.key"))
	if err != nil || len(backups) != 1 {
		t.Fatalf("backup of the old CA key: %v %v", backups, err)
	}
	if got := mustRead(t, filepath.Join(filepath.Dir(backups[0]), "ca.crt")); !bytes.Equal(got, oldCA) {
		t.Error("the backup does not hold the old CA certificate")
	}
	if info, err := os.Stat(backups[0]); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("backed-up CA key: %v, mode %v; want 0400", err, info.Mode().Perm())
	}
	// Nothing left to do: a second run changes nothing.
	out, err = Reissue(context.Background(), pki.New(s), Options{})
	if err != nil || out.NewCA != nil || len(out.Renewed) != 0 {
		t.Errorf("second Reissue: %v, new CA %v, %d renewed; want nothing", err, out.NewCA != nil, len(out.Renewed))
	}
}

// TestReissueCrashAtEveryStepConverges kills the recovery from an expired
// CA at each filesystem step: every pair in effect stays whole, and a
// second Reissue ends with one new CA that every bundle trusts and every
// certificate chains to.
func TestReissueCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, oldCA := expiredCATree(t)
	steps := 0
	for n := 1; ; n++ {
		dir := filepath.Join(ramdir.TempDir(t), "pki")
		copyTree(t, base.PKIDir, dir)
		s := spec(t, threeNodes, dir)
		stopped := crashpoint.RunUntilStepIn(t, dir, n, func() error { _, err := Reissue(ctx, pki.New(s), Options{}); return err })
		if stopped == "" {
			break
		}
		steps++
		checkPairsConsistent(t, s, stopped)
		if _, err := Reissue(ctx, pki.New(s), Options{}); err != nil {
			t.Fatalf("killed at step %s; reissue again: %v", stopped, err)
		}
		checkConverged(t, s, stopped)
		if bytes.Equal(mustRead(t, pki.Paths{PKI: dir}.CACert()), oldCA) {
			t.Errorf("killed at step %s: the expired CA is still in place", stopped)
		}
		if t.Failed() {
			return
		}
	}
	if steps < 30 {
		t.Fatalf("only %d steps: the hook does not see the recovery's writes", steps)
	}
	t.Logf("recovery from an expired CA, 3 nodes: killed at each of %d steps, every re-run converged", steps)
}
