package rotate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// crlSpec is one local node with month-long leaves and nothing running:
// runs that need no member.
func crlSpec(t *testing.T) *cluster.Spec {
	t.Helper()
	dir := t.TempDir()
	spec := "name: unit\npkiDir: pki\nlocal: true\ncerts:\n  validity: 30d\nnodes:\n" +
		"  - {name: etcd-1, ips: [127.0.0.1], clientPort: 52579, peerPort: 52580, restart: \"true\"}\n"
	s, err := cluster.Parse([]byte(spec), filepath.Join(dir, "spec.yaml"), cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRotateKeepsTheCRLCurrent: the metrics show the CRL's next update
// and size; a rotate past half the CRL's life signs it again, into the
// CA's store and every bundle, with the entries it had.
func TestRotateKeepsTheCRLCurrent(t *testing.T) {
	s := crlSpec(t)
	ctx := context.Background()
	metrics := filepath.Join(t.TempDir(), "etcdpki.prom")
	if _, err := issue.RevokeSerials(ctx, pki.New(s), []pki.Revoked{{Serial: "abc", Reason: "superseded", When: time.Now()}}, issue.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rotate.Run(ctx, pki.New(s), rotate.Options{MetricsFile: metrics}); err != nil {
		t.Fatal(err)
	}
	text := livetest.ReadFile(t, metrics)
	for _, want := range []string{`etcdpki_crl_revoked{cluster="unit"} 1`, `etcdpki_crl_next_update_seconds{cluster="unit"} 6047`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	p := pki.Paths{PKI: s.PKIDir}
	before, _ := pki.LoadCRL(p)
	later := func() time.Time { return time.Now().Add(4 * 24 * time.Hour) }
	var out bytes.Buffer
	if _, err := rotate.Run(ctx, pki.New(s), rotate.Options{DryRun: true, Now: later, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "[crl] CRL would be signed again (past half its life") {
		t.Errorf("dry run does not say the CRL would be signed again:\n%s", out.String())
	}
	if same, _ := pki.LoadCRL(p); same.Number.Cmp(before.Number) != 0 {
		t.Error("the dry run signed the CRL")
	}
	out.Reset()
	if _, err := rotate.Run(ctx, pki.New(s), rotate.Options{Now: later, Out: &out, MetricsFile: metrics}); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	after, err := pki.LoadCRL(p)
	if err != nil {
		t.Fatal(err)
	}
	if after.Number.Int64() != before.Number.Int64()+1 || !after.Has("abc") || !after.NextUpdate.After(before.NextUpdate.Add(3*24*time.Hour)) {
		t.Errorf("CRL after the upkeep: number %v (was %v), has abc %v, next update %s (was %s)\n%s", after.Number, before.Number, after.Has("abc"), after.NextUpdate, before.NextUpdate, out.String())
	}
	node, _ := os.ReadFile(p.NodeCRL("etcd-1"))
	ca, _ := os.ReadFile(p.CRL())
	if !bytes.Equal(node, ca) {
		t.Error("the node bundle holds another CRL than the CA's")
	}
	if !strings.Contains(out.String(), "[crl] CRL signed again (past half its life") {
		t.Errorf("no line says the CRL was signed again:\n%s", out.String())
	}
}

// TestRotateWritesEtcdEnvForAnOldPKI: a PKI from before etcd.env (its
// journal records no etcd.env digest) gets one per node on the next
// rotate, with a line saying why, and its members are restarted once for
// it, with that reason.
func TestRotateWritesEtcdEnvForAnOldPKI(t *testing.T) {
	s := crlSpec(t)
	ctx := context.Background()
	if _, err := rotate.Run(ctx, pki.New(s), rotate.Options{}); err != nil {
		t.Fatal(err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	// As an older etcdpki left it: no etcd.env, no digest of one.
	if err := os.Remove(p.NodeEnv("etcd-1")); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(s.PKIDir, runner.StateFile)
	var st map[string]any
	data, _ := os.ReadFile(journal)
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	for _, v := range st["started"].(map[string]any) {
		delete(v.(map[string]any), "envSHA256")
	}
	data, _ = json.Marshal(st)
	if err := os.WriteFile(journal, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := rotate.Run(ctx, pki.New(s), rotate.Options{Out: &out})
	// Nothing listens: the restart is refused, after etcd.env was written.
	if err == nil {
		t.Fatalf("rotate restarted a member nobody runs:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "[crl] etcd.env written for etcd-1: it names the CRL") {
		t.Errorf("no line says etcd.env was written:\n%s", out.String())
	}
	if _, err := os.Stat(p.NodeEnv("etcd-1")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := rotate.Run(ctx, pki.New(s), rotate.Options{DryRun: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "etcd-1: restart: etcd.env changed (it names the CRL; etcd reads it only at start)") {
		t.Errorf("the plan does not restart etcd-1 for its etcd.env:\n%s", out.String())
	}
}
