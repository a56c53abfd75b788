package runner_test

import (
	"bytes"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"regexp"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/runner"
)

// TestTextReporterWritesTheStampedLine: a TextReporter prints what the
// logger printed before events existed, byte for byte: the stamp, a
// space, the message, a newline; a plan event as is.
func TestTextReporterWritesTheStampedLine(t *testing.T) {
	var out bytes.Buffer
	rep := runner.TextReporter(&out)
	at := time.Date(2026, 12, 7, 1, 2, 3, 456_000_000, time.UTC)
	rep.Report(runner.Event{Time: at, Step: runner.StepRenew, Target: "etcd-1/server", Outcome: runner.OutcomeDone, Message: "[renew] etcd-1/server: serial 01 -> 02"})
	rep.Report(runner.Event{Time: at, Step: runner.StepPlan, Message: "plan:\n  renew etcd-1/server\n"})
	want := "2026-12-07T01:02:03.456Z [renew] etcd-1/server: serial 01 -> 02\nplan:\n  renew etcd-1/server\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// TestLoggerReportsEvents: Printf and the lines written to the logger as
// an io.Writer (issue's) become events of the logger's operation, stamped
// now; a text logger prints them as before.
func TestLoggerReportsEvents(t *testing.T) {
	rec := &recorder.Recorder{}
	log := runner.NewReportLogger(rec, "revoke")
	before := time.Now()
	log.Printf("revoking %s", "etcd-1/server")
	if _, err := log.Write([]byte("renewed a\nrenewed")); err != nil {
		t.Fatal(err)
	}
	log.Report(runner.Event{Step: runner.StepRefused, Op: "member remove", Message: "refused"})
	if len(rec.Events()) != 3 {
		t.Fatalf("%d events, want 3 (an incomplete line waits for its newline): %+v", len(rec.Events()), rec.Events())
	}
	for i, want := range []struct{ op, msg string }{{"revoke", "revoking etcd-1/server"}, {"revoke", "renewed a"}, {"member remove", "refused"}} {
		e := rec.Events()[i]
		if e.Op != want.op || e.Message != want.msg || e.Time.Before(before) {
			t.Errorf("event %d: %+v, want op %q message %q stamped after %s", i, e, want.op, want.msg, before)
		}
	}

	var out bytes.Buffer
	runner.NewLogger(&out).Printf("[crl] published CRL number %d", 7)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) \[crl\] published CRL number 7\n$`).MatchString(out.String()) {
		t.Errorf("text logger printed %q", out.String())
	}
}
