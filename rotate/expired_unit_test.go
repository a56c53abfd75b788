package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
)

// TestMetricsCountExpiredCertificates: the textfile says, per
// certificate, whether it has expired, and how many have, so an alert
// need not compare timestamps. Moving the clock past the leaves' end
// (nothing listens on the spec's ports) also shows a plain rotate of a
// cluster that answers nothing, with expired certificates, sending the
// operator to --recover with exit code 1.
func TestMetricsCountExpiredCertificates(t *testing.T) {
	s := localSpec(t)
	metrics := filepath.Join(t.TempDir(), "etcdpki.prom")
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{MetricsFile: metrics}); err != nil {
		t.Fatal(err)
	}
	text := livetest.ReadFile(t, metrics)
	for _, want := range []string{
		"# TYPE etcdpki_cert_expired gauge\n",
		`etcdpki_cert_expired{cluster="unit",cert="etcd-ca"} 0`,
		`etcdpki_cert_expired{cluster="unit",cert="etcd-1/etcd-server"} 0`,
		`etcdpki_certs_expired{cluster="unit"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}

	later := func() time.Time { return time.Now().Add(3 * time.Hour) }
	_, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{MetricsFile: metrics, Now: later, RecoverCommand: "etcdpki rotate --spec X --recover"})
	var rn *rotate.RecoverNeededError
	if !errors.As(err, &rn) || rn.ExitCode() != 1 || !strings.Contains(err.Error(), "etcdpki rotate --spec X --recover") {
		t.Errorf("rotate with expired certificates and no member answering: %v; want exit 1 naming the --recover command", err)
	}
	// The dry run prints its plan and says what a real run would refuse.
	var out bytes.Buffer
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{DryRun: true, Now: later, Out: &out}); err != nil {
		t.Errorf("dry run: %v", err)
	}
	if !strings.Contains(out.String(), "a run would stop here, changing nothing: the cluster is down with expired certificates; run: etcdpki rotate --recover") || !strings.Contains(out.String(), "etcdpki rotate --recover") {
		t.Errorf("dry run does not say a real run would send the operator to --recover:\n%s", out.String())
	}
	text = livetest.ReadFile(t, metrics)
	for _, want := range []string{
		`etcdpki_cert_expired{cluster="unit",cert="etcd-ca"} 0`,
		`etcdpki_cert_expired{cluster="unit",cert="etcd-2/etcd-peer"} 1`,
		`etcdpki_cert_expired{cluster="unit",cert="apiserver-etcd-client"} 1`,
		`etcdpki_certs_expired{cluster="unit"} 7`, // 2 nodes x 3, and the apiserver's
		`etcdpki_rotate_last_run_success{cluster="unit"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

// TestRecoverRefusals: --recover changes nothing when it cannot help (no
// member answers, but nothing expired: exit 1) or does not apply
// (--restart, exit 2).
func TestRecoverRefusals(t *testing.T) {
	s := localSpec(t)
	before := livetest.Serials(t, s)
	_, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Recover: true})
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 1 || !strings.Contains(err.Error(), "no certificate has expired") {
		t.Errorf("--recover with nothing expired: %v; want exit 1 saying nothing expired", err)
	}
	_, err = rotate.Run(context.Background(), pki.New(s), rotate.Options{Recover: true, Restart: rotate.RestartAlways})
	if !errors.As(err, &ec) || ec.ExitCode() != 2 || !strings.Contains(err.Error(), "--restart") {
		t.Errorf("--recover --restart=always: %v; want exit 2 naming --restart", err)
	}
	after := livetest.Serials(t, s)
	for id := range before {
		if before[id] != after[id] {
			t.Errorf("%s changed", id)
		}
	}
}

// TestRecoverResumesAfterRenewal: a recovery killed after renewing (and
// before its restarts) left valid certificates that no member runs with
// yet; the next --recover puts them into effect instead of refusing
// because nothing has expired any more.
func TestRecoverResumesAfterRenewal(t *testing.T) {
	s := localSpec(t)
	// The journal learns what the members run with.
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Renew(context.Background(), pki.New(s), pki.New(s).Targets, issue.RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := rotate.Run(context.Background(), pki.New(s), rotate.Options{Recover: true, DryRun: true, Out: &out}); err != nil {
		t.Fatalf("--recover --dry-run after a renewal: %v", err)
	}
	if !strings.Contains(out.String(), "renewed by an earlier run, to put into effect: etcd-1/etcd-server") ||
		!strings.Contains(out.String(), "certificates to renew:\n  (none)") {
		t.Errorf("dry run does not resume with the renewed certificates:\n%s", out.String())
	}
}
