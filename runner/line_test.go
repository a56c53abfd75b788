package runner_test

import (
	"errors"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"reflect"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/runner"
)

// TestStepFillsTheEvent: Logger.Step's setters fill the structured fields
// and each reporting method its outcome, the Message being the formatted
// line alone; ReportRenewed (issue.Renew's line) is a renew event.
func TestStepFillsTheEvent(t *testing.T) {
	rec := &recorder.Recorder{}
	log := runner.NewReportLogger(rec, "rotate")
	boom := errors.New("boom")
	log.Step(runner.StepProve, "etcd-1").Count(1, 3).Serial("0a0b").Took(42*time.Millisecond).Err(boom).Done("[%d/%d] %s", 1, 3, "etcd-1")
	log.Step(runner.StepDeploy, "etcd-2").Warn("w")
	log.Step(runner.StepCheck, "").Skipped("s")
	log.Step(runner.StepCRL, "").Failed("f")
	log.Step(runner.StepCRL, "").DryRun("d")
	log.Step(runner.StepResume, "x").Info("i")
	log.Step(runner.StepCRL, "").As(runner.OutcomeDryRun, "as")
	log.ReportRenewed("etcd-1/etcd-server", "0c", "[renew] etcd-1/etcd-server: serial 0a -> 0c")
	want := []runner.Event{
		{Op: "rotate", Step: runner.StepProve, Target: "etcd-1", Index: 1, Total: 3, Serial: "0a0b", Outcome: runner.OutcomeDone, Duration: 42 * time.Millisecond, Message: "[1/3] etcd-1", Err: boom},
		{Op: "rotate", Step: runner.StepDeploy, Target: "etcd-2", Outcome: runner.OutcomeWarning, Message: "w"},
		{Op: "rotate", Step: runner.StepCheck, Outcome: runner.OutcomeSkipped, Message: "s"},
		{Op: "rotate", Step: runner.StepCRL, Outcome: runner.OutcomeFailed, Message: "f"},
		{Op: "rotate", Step: runner.StepCRL, Outcome: runner.OutcomeDryRun, Message: "d"},
		{Op: "rotate", Step: runner.StepResume, Target: "x", Message: "i"},
		{Op: "rotate", Step: runner.StepCRL, Outcome: runner.OutcomeDryRun, Message: "as"},
		{Op: "rotate", Step: runner.StepRenew, Target: "etcd-1/etcd-server", Serial: "0c", Outcome: runner.OutcomeDone, Message: "[renew] etcd-1/etcd-server: serial 0a -> 0c"},
	}
	if len(rec.Events()) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(rec.Events()), len(want), rec.Events())
	}
	for i, e := range rec.Events() {
		if e.Time.IsZero() {
			t.Errorf("event %d is not stamped", i)
		}
		e.Time = time.Time{}
		if !reflect.DeepEqual(e, want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, e, want[i])
		}
	}
}
