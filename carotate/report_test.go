package carotate_test

import (
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/runner"
)

func memberNames(s *cluster.Spec) []string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// checkStageEvents: a ca rotate run that ends with stage reports events
// of operation "ca rotate"; stage's own lines carry it as their Step,
// and it reports a done event for the stage as a whole and one for each
// member it deployed to. The reissue stage's member events are counted
// [i/n] and state the serial the member's client port serves.
func checkStageEvents(t *testing.T, events []runner.Event, stage string, members []string) {
	t.Helper()
	whole := false
	byMember := map[string]runner.Event{}
	for _, e := range events {
		if e.Op != "ca rotate" {
			t.Errorf("event %+v: operation %q, want ca rotate", e, e.Op)
		}
		if e.Step != stage || e.Outcome != runner.OutcomeDone {
			continue
		}
		if !strings.HasPrefix(e.Message, stage) && !strings.HasPrefix(e.Message, "stopped after stage "+stage) {
			t.Errorf("%s event says %q", stage, e.Message)
		}
		if e.Target == "" {
			whole = true
		} else {
			byMember[e.Target] = e
		}
	}
	if !whole {
		t.Errorf("no done event for stage %s as a whole: %+v", stage, events)
	}
	counted := map[int]bool{}
	for _, m := range members {
		e, ok := byMember[m]
		switch {
		case !ok:
			t.Errorf("stage %s: no done event about member %s: %+v", stage, m, events)
		case stage == "reissue" && (e.Index < 1 || e.Index > len(members) || counted[e.Index] || e.Total != len(members) || e.Serial == "" || e.Duration <= 0):
			t.Errorf("reissue event of %s is %+v; want its own [i/%d], a serial and a duration", m, e, len(members))
		}
		counted[e.Index] = true
	}
}
