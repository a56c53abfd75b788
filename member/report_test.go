package member_test

import (
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/runner"
)

// checkAddEvents: a member add reports its learner, start, promote and
// prove steps as events of operation "member add" about the new node,
// done; the prove event states the serial its client port serves, the
// start and promote (catch-up) events their durations.
func checkAddEvents(t *testing.T, events []runner.Event, node, serial string) {
	t.Helper()
	done := map[string]runner.Event{}
	for _, e := range events {
		if e.Op != "member add" {
			t.Errorf("event %+v: operation %q, want member add", e, e.Op)
		}
		if e.Outcome == runner.OutcomeDone && e.Target == node {
			done[e.Step] = e
		}
	}
	for _, step := range []string{"learner", "start", "promote", "prove", "done"} {
		e, ok := done[step]
		if !ok {
			t.Errorf("no %s event about %s, done: %+v", step, node, events)
			continue
		}
		if want := "[" + step + "] "; step != "done" && !strings.HasPrefix(e.Message, want) {
			t.Errorf("%s event says %q, want its %q line", step, e.Message, want)
		}
	}
	if e := done["prove"]; e.Serial != serial {
		t.Errorf("prove event %+v: serial %q, want %q (the one etcd-server has)", e, e.Serial, serial)
	}
	if done["start"].Duration <= 0 {
		t.Errorf("start event %+v states no duration", done["start"])
	}
	caughtUp := false
	for _, e := range events {
		caughtUp = caughtUp || (e.Step == "promote" && e.Target == node && e.Duration > 0 && strings.Contains(e.Message, "caught up in"))
	}
	if !caughtUp {
		t.Errorf("no promote event stating the learner's catch-up time: %+v", events)
	}
}
