package rotate_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/etcdpki/etcdpki/internal/testharness/recorder"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

// checkRotateEvents: a rotation without restarts reports a renew event
// per renewed certificate, naming it and its new serial, and a prove
// event per member, counted [i/n], done, with the serial its client port
// serves; each event's Message is the line the CLI printed.
func checkRotateEvents(t *testing.T, events []runner.Event, spec *cluster.Spec, before, after map[string]string) {
	t.Helper()
	renewed := map[string]string{}
	proved := map[string]runner.Event{}
	for _, e := range events {
		if e.Op != "rotate" {
			t.Errorf("event %+v: operation %q, want rotate", e, e.Op)
		}
		switch e.Step {
		case runner.StepRenew:
			if e.Target != "" {
				renewed[e.Target] = e.Serial
				if e.Outcome != runner.OutcomeDone || !strings.HasPrefix(e.Message, "[renew] "+e.Target+": serial ") {
					t.Errorf("renew event %+v: want outcome done and its [renew] line", e)
				}
			}
		case runner.StepProve:
			proved[e.Target] = e
		}
	}
	for id, s := range after {
		if before[id] != s && renewed[id] != s {
			t.Errorf("certificate %s renewed to serial %s; its renew event says %q", id, s, renewed[id])
		}
	}
	for i, n := range spec.Nodes {
		e, ok := proved[n.Name]
		switch {
		case !ok:
			t.Errorf("no prove event for member %s: %+v", n.Name, events)
		case e.Outcome != runner.OutcomeDone || e.Index != i+1 || e.Total != len(spec.Nodes) || e.Serial != after[n.Name+"/etcd-server"] || e.Duration <= 0:
			t.Errorf("prove event of %s is %+v; want done, [%d/%d], serial %s and a duration", n.Name, e, i+1, len(spec.Nodes), after[n.Name+"/etcd-server"])
		case !strings.HasPrefix(e.Message, fmt.Sprintf("[%d/%d] %s: in effect without restart", i+1, len(spec.Nodes), n.Name)):
			t.Errorf("prove event of %s says %q", n.Name, e.Message)
		}
	}
}

// TestDryRunReportsThePlanAsOneEvent: given a Reporter, a dry run's plan
// is one plan event (outcome dry-run) of operation rotate whose message is
// the plan text Out gets, unstamped; every other event is a line Out gets
// after its stamp.
func TestDryRunReportsThePlanAsOneEvent(t *testing.T) {
	s := localSpec(t)
	var out bytes.Buffer
	o := rotate.Options{DryRun: true, Restart: rotate.RestartNever, RenewBefore: livetest.EverythingDue}
	o.Out = &out
	if _, err := rotate.Run(context.Background(), pki.New(s), o); err != nil {
		t.Fatalf("dry run to Out: %v\n%s", err, out.String())
	}
	rec := &recorder.Recorder{}
	o.Out, o.Reporter = nil, rec
	if _, err := rotate.Run(context.Background(), pki.New(s), o); err != nil {
		t.Fatalf("dry run to a Reporter: %v", err)
	}
	plans := 0
	for _, e := range rec.Events() {
		if e.Op != "rotate" {
			t.Errorf("event %+v: operation %q, want rotate", e, e.Op)
		}
		if e.Step != runner.StepPlan {
			if !strings.Contains(out.String(), " "+e.Message+"\n") {
				t.Errorf("event message %q is not a stamped line of Out:\n%s", e.Message, out.String())
			}
			continue
		}
		plans++
		if e.Outcome != runner.OutcomeDryRun || !strings.Contains(e.Message, "etcd-1") || !strings.Contains(out.String(), e.Message) {
			t.Errorf("plan event %+v: want outcome dry-run and the plan text Out got:\n%s", e, out.String())
		}
	}
	if plans != 1 {
		t.Errorf("%d plan events, want 1: %+v", plans, rec.Events())
	}
}
