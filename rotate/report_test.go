package rotate_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

type recorder struct {
	mu     sync.Mutex
	events []runner.Event
}

func (r *recorder) Report(e runner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
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
	rec := &recorder{}
	o.Out, o.Reporter = nil, rec
	if _, err := rotate.Run(context.Background(), pki.New(s), o); err != nil {
		t.Fatalf("dry run to a Reporter: %v", err)
	}
	plans := 0
	for _, e := range rec.events {
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
		t.Errorf("%d plan events, want 1: %+v", plans, rec.events)
	}
}
